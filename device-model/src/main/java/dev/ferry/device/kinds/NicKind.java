package dev.ferry.device.kinds;

import dev.ferry.device.spi.DeviceContext;
import dev.ferry.device.spi.DeviceFunction;
import dev.ferry.device.spi.DeviceKindProvider;

/** {@code nic}: a network adapter (see {@link NicDevice}). NDMA; no pre-copy by default; a 1 MiB flow table. */
public final class NicKind implements DeviceKindProvider {
    @Override
    public String name() {
        return "nic";
    }

    @Override
    public String description() {
        return "network adapter: receive and transmit rings by DMA, a flow table in device memory, a P2P target";
    }

    @Override
    public long defaultMemoryBytes() {
        return 1L << 20;
    }

    @Override
    public DeviceFunction create(DeviceContext context) {
        return new NicDevice(context);
    }
}
