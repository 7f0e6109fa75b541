package dev.ferry.device.kinds;

import dev.ferry.device.spi.DeviceContext;
import dev.ferry.device.spi.DeviceFunction;
import dev.ferry.device.spi.DeviceKindProvider;

/** {@code nvme}: storage, a 16 MiB namespace by default that it pre-copies; NDMA; a P2P target (see {@link NvmeDevice}). */
public final class NvmeKind implements DeviceKindProvider {
    @Override
    public String name() {
        return "nvme";
    }

    @Override
    public String description() {
        return "storage controller: blocks in device memory, DMA to and from guest buffers, completions by DMA, pre-copy";
    }

    @Override
    public boolean defaultPreCopy() {
        return true;
    }

    @Override
    public long defaultMemoryBytes() {
        return 16L << 20;
    }

    @Override
    public DeviceFunction create(DeviceContext context) {
        return new NvmeDevice(context);
    }
}
