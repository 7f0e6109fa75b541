package dev.ferry.device.kinds;

import dev.ferry.device.IommuFault;
import dev.ferry.device.migration.StreamFormatException;
import dev.ferry.device.spi.DeviceContext;
import dev.ferry.device.spi.DeviceFunction;
import dev.ferry.device.spi.Registers;
import java.io.DataInput;
import java.io.DataOutput;
import java.io.IOException;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A serial port: tiny state and no DMA. Transmitted bytes go into a FIFO in device memory; an
 * interrupt is raised every {@value #IRQ_EVERY} bytes. NDMA (trivially: it never DMAs).
 */
final class SerialDevice implements DeviceFunction {
    /** Doorbell: transmit the low byte of the argument. */
    static final int OP_TRANSMIT = 1;
    private static final int IRQ_EVERY = 16;

    private long lineControl;
    private long transmitted;
    private long checksum;
    private final byte[] one = new byte[1];

    private final DeviceContext device;

    SerialDevice(DeviceContext device) {
        this.device = device;
    }

    @Override
    public void execute(int register, long value) {
        switch (register) {
            case Registers.RING_BASE, Registers.RING_SIZE -> lineControl = Mix.mix(lineControl, value);
            case Registers.DOORBELL -> {
                if (Mix.op(value) == OP_TRANSMIT) {
                    transmit((byte) value);
                }
            }
            default -> {
            }
        }
    }

    private void transmit(byte b) {
        one[0] = b;
        device.writeMemory(Mix.index(transmitted, device.memoryBytes()), one, 0, 1);
        transmitted++;
        checksum = Mix.mix(checksum, b);
        if (transmitted % IRQ_EVERY == 0) {
            device.raiseInterrupt();
        }
    }

    @Override
    public int registerBytes() {
        return 3 * 8;
    }

    @Override
    public void saveRegisters(DataOutput out) throws IOException {
        out.writeLong(lineControl);
        out.writeLong(transmitted);
        out.writeLong(checksum);
    }

    @Override
    public void loadRegisters(DataInput in) throws IOException, StreamFormatException {
        lineControl = in.readLong();
        long count = in.readLong();
        if (count < 0) {
            throw new StreamFormatException("serial byte count is negative");
        }
        transmitted = count;
        checksum = in.readLong();
    }

    @Override
    public void resetRegisters() {
        lineControl = transmitted = checksum = 0;
    }

    @Override
    public long workloadDoorbell(SplittableRandom random) {
        return Mix.doorbell(OP_TRANSMIT, 0x20 + random.nextInt(0x5f));
    }

    @Override
    public void describeRegisters(Map<String, Long> out) {
        out.put("bytesTransmitted", transmitted);
    }
}
