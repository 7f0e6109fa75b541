package dev.ferry.device.kinds;

import dev.ferry.device.spi.DeviceContext;
import dev.ferry.device.spi.DeviceFunction;
import dev.ferry.device.spi.DeviceKindProvider;

/**
 * {@code gpu}: device memory (64 MiB by default) with an internal dirty log, so it pre-copies; compute and P2P
 * jobs; NDMA; the only built-in kind that re-initialises ({@code reinitMs}, W8). See {@link GpuDevice}.
 */
public final class GpuKind implements DeviceKindProvider {
    @Override
    public String name() {
        return "gpu";
    }

    @Override
    public String description() {
        return "GPU: compute jobs by DMA into device memory, P2P doorbell writes, pre-copy, re-partitioning (reinitMs)";
    }

    @Override
    public boolean defaultPreCopy() {
        return true;
    }

    @Override
    public long defaultMemoryBytes() {
        return 64L << 20;
    }

    @Override
    public boolean reinitialises() {
        return true;
    }

    @Override
    public DeviceFunction create(DeviceContext context) {
        return new GpuDevice(context);
    }
}
