package dev.ferry.device.kinds;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/** A fast, deterministic 64-bit mixing function for the devices' synthetic internal state. */
final class Mix {
    static final long OP_MASK = (1L << 56) - 1;
    private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    private Mix() {
    }

    static long mix(long h, long v) {
        h ^= v;
        h *= 0x9E3779B97F4A7C15L;
        return h ^ (h >>> 31);
    }

    /** Mixes {@code length} bytes, a multiple of 8 or not. */
    static long mix(long h, byte[] bytes, int off, int length) {
        int i = 0;
        for (; i + 8 <= length; i += 8) {
            h = mix(h, (long) LONGS.get(bytes, off + i));
        }
        for (; i < length; i++) {
            h = mix(h, bytes[off + i]);
        }
        return h;
    }

    static long getLong(byte[] bytes, int off) {
        return (long) LONGS.get(bytes, off);
    }

    static void putLong(byte[] bytes, int off, long value) {
        LONGS.set(bytes, off, value);
    }

    static int op(long doorbell) {
        return (int) (doorbell >>> 56);
    }

    static long arg(long doorbell) {
        return doorbell & OP_MASK;
    }

    static long doorbell(int op, long arg) {
        return ((long) op << 56) | (arg & OP_MASK);
    }

    /** {@code value mod n} for a value read as unsigned. */
    static long index(long value, long n) {
        return Long.remainderUnsigned(value, n);
    }
}
