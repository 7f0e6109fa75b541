package dev.ferry.device.memory;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * Allocates zeroed direct buffers for guest and device memory and frees them at once when asked.
 * Guest memory comes and goes in gigabytes; left to the garbage collector, freed VMs would hold it
 * until a collection that a small heap may not need for a long time, and new allocations would
 * stall on the JDK's direct-memory limit meanwhile.
 *
 * <p>Buffers of whole huge pages (guest memory's 2 MiB chunks, device memory of such sizes) are
 * {@link MappedMemory} where it can be had: mapped in huge pages, zero until written, touched by
 * nothing up front. Other sizes, and all of them where it cannot, come from a strategy below.
 *
 * <p>On Java 22 and later each buffer is a segment of its own shared arena
 * ({@code java.lang.foreign}, reached reflectively since the code is compiled for Java 17), freed by
 * closing the arena: a buffer used after that throws instead of touching freed memory. Before
 * that, buffers come from {@link ByteBuffer#allocateDirect} and are freed through
 * {@code sun.misc.Unsafe.invokeCleaner} (module {@code jdk.unsupported}). Where neither is available,
 * freeing is left to the collector.
 */
final class DirectMemory {
    private static final Strategy STRATEGY = Strategy.find();
    private static final MappedMemory MAPPED = findMapped();
    private static final int PAGE = 4096;

    private DirectMemory() {
    }

    /** A zeroed direct buffer of {@code bytes}. */
    static ByteBuffer allocate(int bytes) {
        if (MAPPED != null && bytes > 0 && bytes % MappedMemory.HUGE_PAGE == 0) {
            return MAPPED.map(bytes);
        }
        return STRATEGY.allocate(bytes);
    }

    /** Frees a buffer {@link #allocate} returned; nothing may use it, or a view of it, afterwards. */
    static void free(ByteBuffer buffer) {
        if (MAPPED == null || !MAPPED.free(buffer)) {
            STRATEGY.free(buffer);
        }
    }

    /**
     * Writes every 4 KiB page of a zeroed buffer, leaving it zero, so that the kernel backs all of it
     * now: memory kept ahead of need ({@link ChunkPool#prefill}) is of no use until it is backed.
     */
    static void touch(ByteBuffer buffer) {
        for (int at = 0; at < buffer.capacity(); at += PAGE) {
            buffer.put(at, (byte) 0);
        }
    }

    /** How this JVM allocates and frees buffers that are not whole huge pages. */
    static String strategy() {
        return STRATEGY.name();
    }

    /** Whether buffers of whole huge pages are mapped and advised as huge pages ({@link MappedMemory}). */
    static boolean hugePages() {
        return MAPPED != null;
    }

    /** Bytes of buffers mapped in huge pages and not freed; 0 where none are mapped. */
    static long mappedBytes() {
        return MAPPED == null ? 0 : MAPPED.liveBytes();
    }

    /**
     * What the kernel does with that advice: its transparent huge page mode ({@code always},
     * {@code madvise} or {@code never}); {@code unknown} where it cannot be read. Read here rather than
     * in {@link MappedMemory}, which a class path without JNA cannot load.
     */
    static String hugePageMode() {
        try {
            String modes = Files.readString(Path.of("/sys/kernel/mm/transparent_hugepage/enabled"));
            int open = modes.indexOf('[');
            int close = modes.indexOf(']', open + 1);
            return open >= 0 && close > open ? modes.substring(open + 1, close) : "unknown";
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }

    private static MappedMemory findMapped() {
        try {
            return MappedMemory.find();
        } catch (LinkageError e) {
            // No JNA on the class path (the device model has it as an optional dependency).
            return null;
        }
    }

    private interface Strategy {
        ByteBuffer allocate(int bytes);

        void free(ByteBuffer buffer);

        String name();

        static Strategy find() {
            if (Runtime.version().feature() >= 22) {
                try {
                    return new Arenas();
                } catch (ReflectiveOperationException | RuntimeException e) {
                    // Fall through to the cleaner.
                }
            }
            try {
                return new Cleaner();
            } catch (ReflectiveOperationException | RuntimeException e) {
                return new Collector();
            }
        }
    }

    /** One shared arena per buffer, closed to free it. */
    private static final class Arenas implements Strategy {
        private final Method ofShared;
        private final Method allocate;
        private final Method asByteBuffer;
        private final Method close;
        private final Map<ByteBuffer, AutoCloseable> arenas = Collections.synchronizedMap(new IdentityHashMap<>());

        Arenas() throws ReflectiveOperationException {
            Class<?> arena = Class.forName("java.lang.foreign.Arena");
            Class<?> segment = Class.forName("java.lang.foreign.MemorySegment");
            ofShared = arena.getMethod("ofShared");
            allocate = arena.getMethod("allocate", long.class, long.class);
            asByteBuffer = segment.getMethod("asByteBuffer");
            close = arena.getMethod("close");
            free(allocate(4096));
        }

        @Override
        public ByteBuffer allocate(int bytes) {
            Object arena = null;
            try {
                arena = ofShared.invoke(null);
                ByteBuffer buffer = (ByteBuffer) asByteBuffer.invoke(allocate.invoke(arena, (long) bytes, 64L));
                arenas.put(buffer, (AutoCloseable) arena);
                return buffer;
            } catch (java.lang.reflect.InvocationTargetException e) {
                closeQuietly(arena);
                if (e.getCause() instanceof OutOfMemoryError oom) {
                    throw oom;
                }
                throw new IllegalStateException("allocating " + bytes + " bytes: " + e.getCause(), e.getCause());
            } catch (IllegalAccessException e) {
                closeQuietly(arena);
                throw new IllegalStateException(e);
            }
        }

        @Override
        public void free(ByteBuffer buffer) {
            AutoCloseable arena = arenas.remove(buffer);
            if (arena != null) {
                closeQuietly(arena);
            }
        }

        private void closeQuietly(Object arena) {
            if (arena == null) {
                return;
            }
            try {
                close.invoke(arena);
            } catch (ReflectiveOperationException e) {
                // Left to the collector, which frees nothing of a shared arena: only on a JDK bug.
            }
        }

        @Override
        public String name() {
            return "arena";
        }
    }

    /** {@code allocateDirect}, freed by the buffer's cleaner. */
    private static final class Cleaner implements Strategy {
        private final Object unsafe;
        private final Method invokeCleaner;

        Cleaner() throws ReflectiveOperationException {
            Class<?> type = Class.forName("sun.misc.Unsafe");
            Field field = type.getDeclaredField("theUnsafe");
            field.setAccessible(true);
            unsafe = field.get(null);
            invokeCleaner = type.getMethod("invokeCleaner", ByteBuffer.class);
        }

        @Override
        public ByteBuffer allocate(int bytes) {
            return ByteBuffer.allocateDirect(bytes);
        }

        @Override
        public void free(ByteBuffer buffer) {
            if (!buffer.isDirect()) {
                return;
            }
            try {
                invokeCleaner.invoke(unsafe, buffer);
            } catch (ReflectiveOperationException | RuntimeException e) {
                // Left to the collector.
            }
        }

        @Override
        public String name() {
            return "cleaner";
        }
    }

    /** {@code allocateDirect}, freed when collected. */
    private static final class Collector implements Strategy {
        @Override
        public ByteBuffer allocate(int bytes) {
            return ByteBuffer.allocateDirect(bytes);
        }

        @Override
        public void free(ByteBuffer buffer) {
        }

        @Override
        public String name() {
            return "collector";
        }
    }
}
