package dev.ferry.device;

/** Who wrote a device register. */
public enum MmioSource {
    /** A vCPU (the guest driver). */
    CPU,
    /** A peer device, through the IOMMU's P2P mapping. */
    P2P
}
