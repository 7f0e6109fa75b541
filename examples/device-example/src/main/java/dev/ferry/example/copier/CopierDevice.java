package dev.ferry.example.copier;

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
 * One copier: the guest driver tells it where its ring area is (registers 1 and 2) and rings the doorbell with
 * {@code OP_COPY << 56 | argument}; the argument picks a source and a destination page in the ring area. The
 * copier reads the source page by DMA, writes it to the destination page by DMA, appends a 16-byte entry (copy
 * number, pages) to its journal in device memory and raises an interrupt.
 *
 * <p>Its registers are the ring area, the number of copies and a checksum of everything copied: all that
 * {@link #execute} depends on besides device memory, so all of it is saved and loaded.
 */
final class CopierDevice implements DeviceFunction {
    /** Doorbell operation: copy one page. Operation 1 is the kind's main job, as a peer's P2P write expects. */
    static final long OP_COPY = 1;
    static final int PAGE = 4096;
    static final int ENTRY_BYTES = 16;

    private final DeviceContext device;
    private final byte[] page = new byte[PAGE];
    private final byte[] entry = new byte[ENTRY_BYTES];

    // The registers.
    private long ringBase;
    private long ringSize;
    private long copies;
    private long checksum;

    CopierDevice(DeviceContext device) {
        this.device = device;
    }

    @Override
    public void execute(int register, long value) throws IommuFault, InterruptedException {
        switch (register) {
            case Registers.RING_BASE -> ringBase = value;
            case Registers.RING_SIZE -> ringSize = value;
            case Registers.DOORBELL -> {
                if (value >>> 56 == OP_COPY) {
                    copy(value & ((1L << 56) - 1));
                }
            }
            default -> {
                // Other registers take writes and do nothing, as unused registers of hardware do.
            }
        }
    }

    private void copy(long argument) throws IommuFault, InterruptedException {
        long pages = ringSize / PAGE;
        if (pages < 2) {
            return; // not programmed yet
        }
        long from = Long.remainderUnsigned(argument, pages);
        long to = Long.remainderUnsigned(argument / pages + copies + 1, pages);
        if (to == from) {
            to = (to + 1) % pages;
        }
        device.dmaRead(ringBase + from * PAGE, page, 0, PAGE);
        device.dmaWrite(ringBase + to * PAGE, page, 0, PAGE);
        checksum = mix(checksum, copies << 32 ^ from << 16 ^ to);
        for (int i = 0; i < PAGE; i += 8) {
            checksum = mix(checksum, getLong(page, i));
        }
        putLong(entry, 0, copies);
        putLong(entry, 8, from << 32 | to);
        long journalEntries = device.memoryBytes() / ENTRY_BYTES;
        device.writeMemory(Long.remainderUnsigned(copies, journalEntries) * ENTRY_BYTES, entry, 0, ENTRY_BYTES);
        copies++;
        device.raiseInterrupt();
    }

    /** Four registers of 8 bytes: exactly what {@link #saveRegisters} writes (W9 counts on it). */
    @Override
    public int registerBytes() {
        return 4 * 8;
    }

    @Override
    public void saveRegisters(DataOutput out) throws IOException {
        out.writeLong(ringBase);
        out.writeLong(ringSize);
        out.writeLong(copies);
        out.writeLong(checksum);
    }

    /** Takes only values this copier could have had: anything else fails the load (D8). */
    @Override
    public void loadRegisters(DataInput in) throws IOException, StreamFormatException {
        long base = in.readLong();
        long size = in.readLong();
        long count = in.readLong();
        long sum = in.readLong();
        if (base < 0 || size < 0 || size % PAGE != 0 || count < 0) {
            throw new StreamFormatException("copier registers out of range: ring " + base + "+" + size + ", " + count + " copies");
        }
        ringBase = base;
        ringSize = size;
        copies = count;
        checksum = sum;
    }

    @Override
    public void resetRegisters() {
        ringBase = ringSize = copies = checksum = 0;
    }

    @Override
    public long workloadDoorbell(SplittableRandom random) {
        return OP_COPY << 56 | random.nextLong(1L << 56);
    }

    @Override
    public void describeRegisters(Map<String, Long> out) {
        out.put("copies", copies);
    }

    private static long mix(long h, long v) {
        h ^= v;
        h *= 0x9E3779B97F4A7C15L;
        return h ^ (h >>> 31);
    }

    private static long getLong(byte[] bytes, int off) {
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = v << 8 | (bytes[off + i] & 0xff);
        }
        return v;
    }

    private static void putLong(byte[] bytes, int off, long value) {
        for (int i = 0; i < 8; i++) {
            bytes[off + i] = (byte) (value >>> (8 * i));
        }
    }
}
