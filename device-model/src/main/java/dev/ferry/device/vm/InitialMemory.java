package dev.ferry.device.vm;

import dev.ferry.device.DeviceModelException;
import java.util.Locale;

/** What guest memory holds when a VM boots. */
public enum InitialMemory {
    /** All zeros: nothing to send but zero-page flags. */
    ZERO,
    /** Pseudo-random bytes from the workload seed: memory that neither compresses nor skips. */
    RANDOM,
    /**
     * Content like a real guest's, from the workload seed: page by page, a quarter zero, half text-like
     * (words of a vocabulary drawn from the seed: what compresses) and a quarter random (what does not).
     */
    MIXED;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static InitialMemory of(String label) {
        for (InitialMemory value : values()) {
            if (value.label().equals(label)) {
                return value;
            }
        }
        throw DeviceModelException.invalid("initialMemory must be zero, random or mixed: " + label);
    }
}
