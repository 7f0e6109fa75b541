package dev.ferry.device.vm;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * SHA-256 digests, hex: of the whole VM, of guest memory, and of each device's state by id.
 * Memory and device memory are hashed as (index, bytes) of their non-zero pages plus their size, so
 * that a large idle VM digests quickly.
 */
public record VmDigest(String vm, String memory, Map<String, String> devices) {
    public VmDigest {
        devices = Collections.unmodifiableMap(new TreeMap<>(devices));
    }
}
