package dev.ferry.device.spi;

/**
 * The register layout every kind shares: a 4 KiB BAR of 512 64-bit registers. The synthetic guest driver
 * writes the ring area into registers 1 and 2 when it probes a device, and rings register 0; a peer's P2P
 * write lands on register 0 too. What a doorbell's value means is the kind's: by convention
 * {@code op << 56 | argument}, and op 1 is the kind's main job, so a peer's doorbell does real work.
 */
public final class Registers {
    /** Register 0: the doorbell. */
    public static final int DOORBELL = 0;
    /** Register 1: guest-physical base of the device's ring area. */
    public static final int RING_BASE = 1;
    /** Register 2: size of the ring area in bytes. */
    public static final int RING_SIZE = 2;
    /** Registers in the 4 KiB BAR. */
    public static final int COUNT = 4096 / 8;

    private Registers() {
    }
}
