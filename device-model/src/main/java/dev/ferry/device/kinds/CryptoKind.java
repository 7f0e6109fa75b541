package dev.ferry.device.kinds;

import dev.ferry.device.spi.DeviceContext;
import dev.ferry.device.spi.DeviceFunction;
import dev.ferry.device.spi.DeviceKindProvider;

/**
 * {@code crypto}: a DMA engine without NDMA, like devices whose control sits in the migrated function; a
 * 256 KiB key store (see {@link CryptoDevice}).
 */
public final class CryptoKind implements DeviceKindProvider {
    @Override
    public String name() {
        return "crypto";
    }

    @Override
    public String description() {
        return "crypto engine: encrypts guest pages in place by DMA with a key store in device memory; no NDMA";
    }

    @Override
    public boolean ndmaCapable() {
        return false;
    }

    @Override
    public long defaultMemoryBytes() {
        return 256L << 10;
    }

    @Override
    public DeviceFunction create(DeviceContext context) {
        return new CryptoDevice(context);
    }
}
