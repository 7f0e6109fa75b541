package dev.ferry.device;

import dev.ferry.device.memory.ChunkPool;
import dev.ferry.device.migration.StreamFormatException;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A serial port: tiny state and no DMA. Transmitted bytes go into a FIFO in device memory; an
 * interrupt is raised every {@value #IRQ_EVERY} bytes. NDMA (trivially: it never DMAs).
 */
final class SerialDevice extends Device {
    /** Doorbell: transmit the low byte of the argument. */
    static final int OP_TRANSMIT = 1;
    private static final int IRQ_EVERY = 16;

    private long lineControl;
    private long transmitted;
    private long checksum;
    private final byte[] one = new byte[1];

    SerialDevice(DeviceConfig config, int slot, ChunkPool memoryPool) {
        super(config, slot, memoryPool);
    }

    @Override
    protected void execute(int register, long value) {
        switch (register) {
            case REG_RING_BASE, REG_RING_SIZE -> lineControl = Mix.mix(lineControl, value);
            case REG_DOORBELL -> {
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
        writeDeviceMemory(Mix.index(transmitted, deviceMemoryBytes()), one, 0, 1);
        transmitted++;
        checksum = Mix.mix(checksum, b);
        if (transmitted % IRQ_EVERY == 0) {
            raiseInterrupt();
        }
    }

    @Override
    protected int registerBytes() {
        return 3 * 8;
    }

    @Override
    protected void writeRegisters(DataOutputStream out) throws IOException {
        out.writeLong(lineControl);
        out.writeLong(transmitted);
        out.writeLong(checksum);
    }

    @Override
    protected void readRegisters(DataInputStream in) throws IOException, StreamFormatException {
        lineControl = in.readLong();
        long count = in.readLong();
        if (count < 0) {
            throw new StreamFormatException("serial byte count is negative");
        }
        transmitted = count;
        checksum = in.readLong();
    }

    @Override
    protected void resetRegisters() {
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
