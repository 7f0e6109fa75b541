package dev.ferry.device;

import java.util.Arrays;
import java.util.Locale;

/** The emulated device kinds, with their defaults (DESIGN: device-model). */
public enum DeviceKind {
    /** Rings in guest memory, DMA, P2P target; NDMA; no pre-copy by default; 1 MiB flow table. */
    NIC("nic", true, false, 1L << 20),
    /** Device memory (default 64 MiB) with internal dirty log for pre-copy; DMA and P2P doorbell writes; NDMA. */
    GPU("gpu", true, true, 64L << 20),
    /** Tiny state, no DMA: a 4 KiB transmit FIFO. */
    SERIAL("serial", true, false, 4096),
    /** DMA engine without NDMA support: its control sits in the migrated function. 256 KiB key store. */
    CRYPTO("crypto", false, false, 256L << 10),
    /** Storage: a namespace (default 16 MiB) in device memory, DMA to and from guest buffers, P2P target; NDMA; pre-copy. */
    NVME("nvme", true, true, 16L << 20);

    /** The API names of every kind, for messages: {@code nic, gpu, ...}. */
    public static final String KNOWN = String.join(", ", Arrays.stream(values()).map(DeviceKind::label).toList());

    private final String label;
    private final boolean ndmaCapable;
    private final boolean defaultPreCopy;
    private final long defaultMemoryBytes;

    DeviceKind(String label, boolean ndmaCapable, boolean defaultPreCopy, long defaultMemoryBytes) {
        this.label = label;
        this.ndmaCapable = ndmaCapable;
        this.defaultPreCopy = defaultPreCopy;
        this.defaultMemoryBytes = defaultMemoryBytes;
    }

    /** The API name, e.g. {@code gpu}. */
    public String label() {
        return label;
    }

    /** Whether the hardware can implement NDMA at all; {@code crypto} cannot. */
    public boolean ndmaCapable() {
        return ndmaCapable;
    }

    public boolean defaultNdma() {
        return ndmaCapable;
    }

    public boolean defaultPreCopy() {
        return defaultPreCopy;
    }

    public long defaultMemoryBytes() {
        return defaultMemoryBytes;
    }

    public static DeviceKind of(String label) {
        for (DeviceKind kind : values()) {
            if (kind.label.equals(label.toLowerCase(Locale.ROOT))) {
                return kind;
            }
        }
        throw DeviceModelException.invalid("unknown device kind '" + label + "'; known: " + KNOWN);
    }

    @Override
    public String toString() {
        return label;
    }
}
