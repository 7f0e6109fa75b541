package dev.ferry.device.vm;

import dev.ferry.device.DeviceModelException;

/**
 * The synthetic guest: rates summed over all vCPUs.
 *
 * @param dirtyBytesPerSecond bytes of pages dirtied per second (each write dirties a whole page)
 * @param p2pOpsPerSecond     doorbells per second that make a {@code gpu} write a peer's doorbell
 * @param doorbellsPerSecond  doorbells per second to the devices' main operation
 * @param seed                makes every run repeat the same sequence of writes and doorbells
 */
public record WorkloadConfig(long dirtyBytesPerSecond, long p2pOpsPerSecond, long doorbellsPerSecond, long seed) {
    public static final long MAX_RATE = 1L << 40;
    public static final WorkloadConfig IDLE = new WorkloadConfig(0, 0, 0, 1);

    public WorkloadConfig {
        check("dirtyBytesPerSecond", dirtyBytesPerSecond);
        check("p2pOpsPerSecond", p2pOpsPerSecond);
        check("doorbellsPerSecond", doorbellsPerSecond);
    }

    /** Doorbells default to one per 16 pages dirtied, so a dirtying guest also keeps its devices busy. */
    public static WorkloadConfig of(long dirtyBytesPerSecond, long p2pOpsPerSecond, long seed) {
        return new WorkloadConfig(dirtyBytesPerSecond, p2pOpsPerSecond, defaultDoorbells(dirtyBytesPerSecond), seed);
    }

    public static long defaultDoorbells(long dirtyBytesPerSecond) {
        return dirtyBytesPerSecond / (16 * 4096);
    }

    public boolean idle() {
        return dirtyBytesPerSecond == 0 && p2pOpsPerSecond == 0 && doorbellsPerSecond == 0;
    }

    private static void check(String name, long value) {
        if (value < 0 || value > MAX_RATE) {
            throw DeviceModelException.invalid(name + " must be between 0 and " + MAX_RATE + ": " + value);
        }
    }
}
