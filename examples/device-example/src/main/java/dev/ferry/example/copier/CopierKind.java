package dev.ferry.example.copier;

import dev.ferry.device.spi.DeviceContext;
import dev.ferry.device.spi.DeviceFunction;
import dev.ferry.device.spi.DeviceKindProvider;

/**
 * {@code copier}: a DMA copy engine. Found by {@link java.util.ServiceLoader} through
 * {@code META-INF/services/dev.ferry.device.spi.DeviceKindProvider}; one instance creates every copier of the
 * daemon, so it keeps no state of its own.
 */
public final class CopierKind implements DeviceKindProvider {
    @Override
    public String name() {
        return "copier";
    }

    @Override
    public String description() {
        return "DMA copy engine: copies guest pages within its ring area and journals each copy in device memory";
    }

    /** It stops starting copies when told to (NDMA), so its VM may use P2P. */
    @Override
    public boolean ndmaCapable() {
        return true;
    }

    /** Its journal changes a little at a time, so pre-copy is worth it: the journal moves before the VM stops. */
    @Override
    public boolean defaultPreCopy() {
        return true;
    }

    /** A 256 KiB journal: 16,384 entries of 16 bytes. */
    @Override
    public long defaultMemoryBytes() {
        return 256L << 10;
    }

    /** Version 1 of what {@link CopierDevice#saveRegisters} writes; raise it when that changes. */
    @Override
    public int formatVersion() {
        return 1;
    }

    @Override
    public DeviceFunction create(DeviceContext context) {
        return new CopierDevice(context);
    }
}
