package dev.ferry.device;

import dev.ferry.device.migration.StreamFormatException;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;

/**
 * The guest-memory area a DMA device works in (its rings, queues or buffers), which the driver sets
 * through {@link Device#REG_RING_BASE} and {@link Device#REG_RING_SIZE}. Part of the device's
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
            case Device.REG_RING_BASE -> base = value;
            case Device.REG_RING_SIZE -> size = value;
            default -> {
            }
        }
    }

    void save(DataOutputStream out) throws IOException {
        out.writeLong(base);
        out.writeLong(size);
    }

    /** Reads both registers and takes them only if they can describe guest memory (D8). */
    void load(DataInputStream in, DeviceKind kind) throws IOException, StreamFormatException {
        long newBase = in.readLong();
        long newSize = in.readLong();
        if (newBase < 0 || newSize < 0) {
            throw new StreamFormatException(kind + " ring outside guest memory");
        }
        base = newBase;
        size = newSize;
    }

    void reset() {
        base = size = 0;
    }
}
