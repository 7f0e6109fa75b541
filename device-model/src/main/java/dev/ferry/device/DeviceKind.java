package dev.ferry.device;

import dev.ferry.device.kinds.CryptoKind;
import dev.ferry.device.kinds.GpuKind;
import dev.ferry.device.kinds.NicKind;
import dev.ferry.device.kinds.NvmeKind;
import dev.ferry.device.kinds.SerialKind;
import dev.ferry.device.spi.DeviceKindProvider;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * A device kind: its name, its traits and the provider that creates its devices (the device SPI,
 * {@link DeviceKindProvider}). The five built-in kinds are constants; a kind loaded from a jar comes from a
 * {@link DeviceKinds} catalog. Two kinds are equal when their names are: the name is what the API, the
 * migration's VM description and the device's data carry.
 */
public final class DeviceKind {
    /** Rings in guest memory, DMA, P2P target; NDMA; no pre-copy by default; 1 MiB flow table. */
    public static final DeviceKind NIC = new DeviceKind(new NicKind());
    /** Device memory (default 64 MiB) with internal dirty log for pre-copy; DMA and P2P doorbell writes; NDMA. */
    public static final DeviceKind GPU = new DeviceKind(new GpuKind());
    /** Tiny state, no DMA: a 4 KiB transmit FIFO. */
    public static final DeviceKind SERIAL = new DeviceKind(new SerialKind());
    /** DMA engine without NDMA support: its control sits in the migrated function. 256 KiB key store. */
    public static final DeviceKind CRYPTO = new DeviceKind(new CryptoKind());
    /** Storage: a namespace (default 16 MiB) in device memory, DMA to and from guest buffers, P2P target; NDMA; pre-copy. */
    public static final DeviceKind NVME = new DeviceKind(new NvmeKind());

    private static final DeviceKind[] BUILT_IN = {NIC, GPU, SERIAL, CRYPTO, NVME};

    /** The API names of the built-in kinds, for messages: {@code nic, gpu, ...}. */
    public static final String KNOWN = String.join(", ", Arrays.stream(BUILT_IN).map(DeviceKind::label).toList());

    private final DeviceKindProvider provider;
    private final String label;

    /**
     * Wraps a provider, checking what it says of itself once, so that a kind from a jar that cannot work is
     * refused when it is loaded rather than when its first device is created.
     *
     * @throws DeviceModelException {@code invalid_config} naming what is wrong
     */
    public DeviceKind(DeviceKindProvider provider) {
        this.provider = provider;
        String name = provider.name();
        String who = provider.getClass().getName();
        if (name == null || !DeviceKindProvider.NAME.matcher(name).matches()) {
            throw DeviceModelException.invalid("device kind " + who + " has the name '" + name + "'; a name must match "
                    + DeviceKindProvider.NAME.pattern());
        }
        long memory = provider.defaultMemoryBytes();
        if (memory <= 0 || memory > DeviceConfig.MAX_MEMORY_BYTES || memory % 4096 != 0) {
            throw DeviceModelException.invalid("device kind " + name + " (" + who + "): defaultMemoryBytes must be a multiple of"
                    + " 4096 between 4096 and " + DeviceConfig.MAX_MEMORY_BYTES + ": " + memory);
        }
        int version = provider.formatVersion();
        if (version < 1 || version > 0xffff) {
            throw DeviceModelException.invalid("device kind " + name + " (" + who + "): formatVersion must be between 1 and 65535: "
                    + version);
        }
        if (provider.defaultNdma() && !provider.ndmaCapable()) {
            throw DeviceModelException.invalid("device kind " + name + " (" + who + "): defaultNdma without ndmaCapable");
        }
        this.label = name;
    }

    /** The built-in kinds, in their order of introduction. */
    public static DeviceKind[] values() {
        return BUILT_IN.clone();
    }

    /** The built-in kinds as a list. */
    public static List<DeviceKind> builtIn() {
        return List.of(BUILT_IN);
    }

    /** The API name, e.g. {@code gpu}. */
    public String label() {
        return label;
    }

    /** The provider that creates this kind's devices. */
    public DeviceKindProvider provider() {
        return provider;
    }

    /** Whether the hardware can implement NDMA at all; {@code crypto} cannot. */
    public boolean ndmaCapable() {
        return provider.ndmaCapable();
    }

    public boolean defaultNdma() {
        return provider.defaultNdma();
    }

    public boolean defaultPreCopy() {
        return provider.defaultPreCopy();
    }

    public long defaultMemoryBytes() {
        return provider.defaultMemoryBytes();
    }

    /** The version of the kind's data format (D8, F8). */
    public int formatVersion() {
        return provider.formatVersion();
    }

    /** Whether a device of this kind may re-initialise ({@code reinitMs}, W8). */
    public boolean reinitialises() {
        return provider.reinitialises();
    }

    public boolean isBuiltIn() {
        return Arrays.asList(BUILT_IN).contains(this);
    }

    /** A built-in kind by its name, case-insensitive; {@link DeviceKinds#of} knows loaded kinds too. */
    public static DeviceKind of(String label) {
        String name = label.toLowerCase(Locale.ROOT);
        for (DeviceKind kind : BUILT_IN) {
            if (kind.label.equals(name)) {
                return kind;
            }
        }
        throw DeviceModelException.invalid("unknown device kind '" + label + "'; known: " + KNOWN);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof DeviceKind kind && kind.label.equals(label);
    }

    @Override
    public int hashCode() {
        return label.hashCode();
    }

    @Override
    public String toString() {
        return label;
    }
}
