package dev.ferry.device.vm;

import dev.ferry.device.DeviceModelException;

/**
 * The synthetic guest and the work it gives its devices.
 *
 * @param dirtyBytesPerSecond       bytes of guest pages the vCPUs dirty per second, summed over the vCPUs
 *                                  (each write dirties a whole page)
 * @param p2pOpsPerSecond           doorbells per second that make a {@code gpu} write a peer's doorbell
 * @param doorbellsPerSecond        doorbells per second to the devices' main operation
 * @param seed                      makes every run repeat the same sequence of writes and doorbells
 * @param deviceDirtyBytesPerSecond bytes of its own device memory each device dirties per second as its own
 *                                  work, while it is RUNNING and the vCPUs run (each write dirties a whole
 *                                  page of device memory); per device, not summed
 */
public record WorkloadConfig(long dirtyBytesPerSecond, long p2pOpsPerSecond, long doorbellsPerSecond, long seed,
                             long deviceDirtyBytesPerSecond) {
    public static final long MAX_RATE = 1L << 40;
    public static final WorkloadConfig IDLE = new WorkloadConfig(0, 0, 0, 1, 0);

    public WorkloadConfig {
        check("dirtyBytesPerSecond", dirtyBytesPerSecond);
        check("p2pOpsPerSecond", p2pOpsPerSecond);
        check("doorbellsPerSecond", doorbellsPerSecond);
        check("deviceDirtyBytesPerSecond", deviceDirtyBytesPerSecond);
    }

    /** A guest whose devices do no work of their own ({@code deviceDirtyBytesPerSecond} 0). */
    public WorkloadConfig(long dirtyBytesPerSecond, long p2pOpsPerSecond, long doorbellsPerSecond, long seed) {
        this(dirtyBytesPerSecond, p2pOpsPerSecond, doorbellsPerSecond, seed, 0);
    }

    /** Doorbells default to one per 16 pages dirtied, so a dirtying guest also keeps its devices busy. */
    public static WorkloadConfig of(long dirtyBytesPerSecond, long p2pOpsPerSecond, long seed) {
        return new WorkloadConfig(dirtyBytesPerSecond, p2pOpsPerSecond, defaultDoorbells(dirtyBytesPerSecond), seed, 0);
    }

    public static long defaultDoorbells(long dirtyBytesPerSecond) {
        return dirtyBytesPerSecond / (16 * 4096);
    }

    /** This workload with each device dirtying {@code bytesPerSecond} of its own memory as its own work. */
    public WorkloadConfig withDeviceDirtyBytesPerSecond(long bytesPerSecond) {
        return new WorkloadConfig(dirtyBytesPerSecond, p2pOpsPerSecond, doorbellsPerSecond, seed, bytesPerSecond);
    }

    public boolean idle() {
        return dirtyBytesPerSecond == 0 && p2pOpsPerSecond == 0 && doorbellsPerSecond == 0 && deviceDirtyBytesPerSecond == 0;
    }

    private static void check(String name, long value) {
        if (value < 0 || value > MAX_RATE) {
            throw DeviceModelException.invalid(name + " must be between 0 and " + MAX_RATE + ": " + value);
        }
    }
}
