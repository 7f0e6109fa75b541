package dev.ferry.device.kinds;

import dev.ferry.device.migration.StreamFormatException;
import dev.ferry.device.spi.Registers;
import java.io.DataInput;
import java.io.DataOutput;
import java.io.IOException;

/**
 * The guest-memory area a DMA device works in (its rings, queues or buffers), which the driver sets
 * through {@link Registers#RING_BASE} and {@link Registers#RING_SIZE}. Part of the device's
 * migrated registers, first in their stream.
 */
final class Ring {
    /** Bytes it takes in the register stream. */
    static final int BYTES = 2 * 8;

    private long base;
    private long size;

    long base() {
        return base;
    }

    long size() {
        return size;
    }

    /** Takes a write to one of the ring's registers; a write to any other register has no effect. */
    void write(int register, long value) {
        switch (register) {
            case Registers.RING_BASE -> base = value;
            case Registers.RING_SIZE -> size = value;
            default -> {
            }
        }
    }

    void save(DataOutput out) throws IOException {
        out.writeLong(base);
        out.writeLong(size);
    }

    /** Reads both registers and takes them only if they can describe guest memory (D8). */
    void load(DataInput in) throws IOException, StreamFormatException {
        long newBase = in.readLong();
        long newSize = in.readLong();
        if (newBase < 0 || newSize < 0) {
            throw new StreamFormatException("ring outside guest memory");
        }
        base = newBase;
        size = newSize;
    }

    void reset() {
        base = size = 0;
    }
}
