package dev.ferry.device;

import java.util.Locale;

/** When device MMIO is mapped into the IOMMU for peer-to-peer DMA (M2). */
public enum P2pPolicy {
    /** Mapped when every device supports NDMA. */
    AUTO,
    /** Mapped always; every device must support NDMA. */
    ON,
    /** Never mapped. */
    OFF;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static P2pPolicy of(String label) {
        for (P2pPolicy policy : values()) {
            if (policy.label().equals(label)) {
                return policy;
            }
        }
        throw DeviceModelException.invalid("p2p must be auto, on or off: " + label);
    }
}
