package dev.ferry.device;

/** A DMA to an address the IOMMU does not map for the initiating device. */
public final class IommuFault extends Exception {
    public IommuFault(String message) {
        super(message);
    }
}
