package dev.ferry.device.vm;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * The frozen-point digest of a VM that {@link IncrementalDigest} maintains, hex: of the whole VM, of its
 * guest memory, and of each device's full state by id. Equal for a VM and its migrated copy. Its values
 * are not those of {@link Vm#digest()} (another construction, for speed): compare a verify digest only with
 * a verify digest.
 */
public record VerifyDigest(String vm, String memory, Map<String, String> devices) {
    public VerifyDigest {
        devices = Collections.unmodifiableMap(new TreeMap<>(devices));
    }
}
