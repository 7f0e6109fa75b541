package dev.ferry.device.memory;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;

/**
 * Frees a direct buffer's memory at once, through the JDK's {@code sun.misc.Unsafe.invokeCleaner}
 * (module {@code jdk.unsupported}). Guest memory comes and goes in gigabytes; left to the garbage
 * collector, freed VMs would hold it until a collection that a small heap may not need for a long
 * time, and new allocations would stall on the JDK's direct-memory limit meanwhile. Where the method
 * is missing, freeing is left to the collector.
 */
final class DirectMemory {
    private final Object unsafe;
    private final Method invokeCleaner;

    private DirectMemory(Object unsafe, Method invokeCleaner) {
        this.unsafe = unsafe;
        this.invokeCleaner = invokeCleaner;
    }

    static DirectMemory find() {
        try {
            Class<?> type = Class.forName("sun.misc.Unsafe");
            Field field = type.getDeclaredField("theUnsafe");
            field.setAccessible(true);
            return new DirectMemory(field.get(null), type.getMethod("invokeCleaner", ByteBuffer.class));
        } catch (ReflectiveOperationException | RuntimeException e) {
            return new DirectMemory(null, null);
        }
    }

    void free(ByteBuffer buffer) {
        if (invokeCleaner == null || !buffer.isDirect()) {
            return;
        }
        try {
            invokeCleaner.invoke(unsafe, buffer);
        } catch (ReflectiveOperationException | RuntimeException e) {
            // Left to the collector.
        }
    }
}
