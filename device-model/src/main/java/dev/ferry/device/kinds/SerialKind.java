package dev.ferry.device.kinds;

import dev.ferry.device.spi.DeviceContext;
import dev.ferry.device.spi.DeviceFunction;
import dev.ferry.device.spi.DeviceKindProvider;

/** {@code serial}: tiny state and no DMA, a 4 KiB transmit FIFO (see {@link SerialDevice}). */
public final class SerialKind implements DeviceKindProvider {
    @Override
    public String name() {
        return "serial";
    }

    @Override
    public String description() {
        return "serial port: transmitted bytes into a FIFO in device memory, an interrupt every 16 bytes, no DMA";
    }

    @Override
    public long defaultMemoryBytes() {
        return 4096;
    }

    @Override
    public DeviceFunction create(DeviceContext context) {
        return new SerialDevice(context);
    }
}
