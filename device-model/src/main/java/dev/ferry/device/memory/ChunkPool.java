package dev.ferry.device.memory;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * Guest memory chunks kept for the next VM instead of being handed back to the operating system.
 *
 * <p>Memory a process gets from the kernel for the first time is zeroed page by page on its first
 * touch, and on a virtual machine each such page may also have to be backed by the hypervisor: a
 * migration destination that builds a fresh 1 GiB VM pays that for every page it receives, and on a
 * small host that costs more than the network. A host that runs VMs keeps such memory instead, as
 * hugepage pools do. Freed chunks of {@link #chunkBytes()} go to a scrubber thread that zeroes them
 * and keeps them, up to {@link #capacityBytes()}; {@link #take} hands out a scrubbed chunk (or zeroes a
 * chunk still waiting to be scrubbed itself) before it allocates a new one. Every chunk handed out
 * reads as zeros, as a newly allocated one does.
 *
 * <p>{@link #prefill} fills the pool once, in the background, with memory allocated and touched ahead of
 * any VM: what QEMU's {@code -mem-prealloc} and a host's boot-time hugepage reservation do, so that a
 * daemon's first incoming VMs land in memory that is already backed, as later ones do.
 *
 * <p>{@link #NONE} keeps nothing: every chunk is allocated new and freed at once.
 */
public final class ChunkPool implements AutoCloseable {
    /** Keeps nothing. */
    public static final ChunkPool NONE = new ChunkPool(0, PageStore.DEFAULT_CHUNK_BYTES);

    private static final int ZERO_BLOCK = 64 << 10;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(ZERO_BLOCK).asReadOnlyBuffer();
    /** How long {@link #take} waits for a chunk the scrubber is zeroing rather than allocate a new one. */
    private static final long SCRUB_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    private final long capacityBytes;
    private final int chunkBytes;
    // Guarded by this: zeroed chunks, chunks waiting to be zeroed, and how many the scrubber holds.
    private final ArrayDeque<ByteBuffer> clean = new ArrayDeque<>();
    private final ArrayDeque<ByteBuffer> toScrub = new ArrayDeque<>();
    private int scrubbing;
    private long keptBytes;
    private Thread scrubber;
    private Thread prefiller;
    private boolean closed;
    private final AtomicLong reused = new AtomicLong();

    /**
     * @param capacityBytes how much freed memory to keep at most; 0 keeps nothing
     * @param chunkBytes    the only chunk size kept (the guest memory chunk size)
     */
    public ChunkPool(long capacityBytes, int chunkBytes) {
        if (capacityBytes < 0 || chunkBytes <= 0 || chunkBytes % ZERO_BLOCK != 0) {
            throw new IllegalArgumentException("capacity " + capacityBytes + " and chunk size " + chunkBytes
                    + " (a multiple of " + ZERO_BLOCK + ")");
        }
        this.capacityBytes = capacityBytes;
        this.chunkBytes = chunkBytes;
    }

    public long capacityBytes() {
        return capacityBytes;
    }

    public int chunkBytes() {
        return chunkBytes;
    }

    /** Bytes kept for reuse right now, zeroed or not yet. */
    public synchronized long keptBytes() {
        return keptBytes;
    }

    /**
     * Whether new chunks are mapped in huge pages in this process (64-bit Linux with JNA), rather than
     * allocated as the JDK's direct buffers, which are touched page by page as they are zeroed.
     */
    public static boolean hugePages() {
        return DirectMemory.hugePages();
    }

    /**
     * Guest and device memory of this process mapped in huge pages and not freed: what VMs hold and
     * pools keep of it. It does not come out of the JDK's direct buffers, so this is where it shows;
     * 0 where {@link #hugePages} is false.
     */
    public static long mappedBytes() {
        return DirectMemory.mappedBytes();
    }

    /**
     * The kernel's transparent huge page mode, which decides what {@link #hugePages} gives: {@code always}
     * or {@code madvise} back chunks with huge pages, {@code never} with 4 KiB pages; {@code unknown} off Linux.
     */
    public static String hugePageMode() {
        return DirectMemory.hugePageMode();
    }

    /** Chunks handed out again instead of allocated, since the pool was made. */
    public long reusedChunks() {
        return reused.get();
    }

    /** A zeroed direct buffer of {@code length} bytes: a kept chunk when the length is the chunk size. */
    public ByteBuffer take(int length) {
        if (length != chunkBytes) {
            return DirectMemory.allocate(length);
        }
        ByteBuffer chunk = null;
        boolean dirty = false;
        synchronized (this) {
            long deadline = System.nanoTime() + SCRUB_WAIT_NANOS;
            while (chunk == null) {
                chunk = clean.pollFirst();
                if (chunk == null) {
                    chunk = toScrub.pollFirst();
                    dirty = chunk != null;
                }
                long left = deadline - System.nanoTime();
                if (chunk != null || scrubbing == 0 || left <= 0) {
                    break;
                }
                // The scrubber is zeroing one: that is sooner than a new chunk, which the kernel zeroes too.
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            if (chunk != null) {
                keptBytes -= chunkBytes;
            }
        }
        if (chunk == null) {
            return DirectMemory.allocate(length);
        }
        if (dirty) {
            zero(chunk);
        }
        reused.incrementAndGet();
        return chunk;
    }

    /**
     * A kept chunk as it is, zeroed or not (it may hold what an earlier VM left), for a caller that
     * writes every byte of it before anything reads it; {@code null} when none is kept or the length
     * is not the chunk size. Spares the zeroing when the content is about to be replaced whole, as a
     * migration's first pass replaces it.
     */
    public ByteBuffer takeKept(int length) {
        if (length != chunkBytes) {
            return null;
        }
        synchronized (this) {
            ByteBuffer chunk = toScrub.pollFirst();
            if (chunk == null) {
                chunk = clean.pollFirst();
            }
            if (chunk != null) {
                keptBytes -= chunkBytes;
                reused.incrementAndGet();
            }
            return chunk;
        }
    }

    /**
     * Takes back a chunk nothing reads or writes any more: kept if it is of the chunk size and there is
     * room, freed otherwise.
     */
    public void give(ByteBuffer chunk) {
        synchronized (this) {
            if (chunk.capacity() == chunkBytes && !closed && keptBytes + chunkBytes <= capacityBytes) {
                keptBytes += chunkBytes;
                toScrub.addLast(chunk);
                startScrubber();
                notifyAll();
                return;
            }
        }
        DirectMemory.free(chunk);
    }

    /**
     * Fills the pool in the background, once: a thread allocates new chunks, touches every page of them
     * so that it is backed now rather than when a VM first writes it, and keeps them, until it has allocated
     * {@code bytes} or the pool holds its capacity. It stops early when the pool is closed, when
     * {@code room} says there is no room for another chunk, or when direct memory runs out. Chunks taken
     * meanwhile are handed out as usual.
     *
     * @param room how many more bytes the pool may take now: the host's memory budget less what its VMs
     *             hold and what the pool keeps, so that VMs starting meanwhile are never short of memory
     *             the prefill took
     * @return completed, when the thread stops, with the bytes it allocated and kept; completed
     *         exceptionally if allocating failed otherwise than by running out of direct memory
     * @throws IllegalStateException if the pool was closed or a prefill was started already
     */
    public CompletableFuture<Long> prefill(long bytes, LongSupplier room) {
        CompletableFuture<Long> done = new CompletableFuture<>();
        synchronized (this) {
            if (closed || prefiller != null) {
                throw new IllegalStateException(closed ? "the memory pool was closed" : "the memory pool is prefilled once");
            }
            prefiller = new Thread(() -> {
                try {
                    done.complete(fill(bytes, room));
                } catch (RuntimeException | Error e) {
                    // What was kept stays kept; the caller learns why the rest was not.
                    done.completeExceptionally(e);
                }
            }, "ferry-memory-prefill");
            prefiller.setDaemon(true);
            prefiller.start();
        }
        return done;
    }

    private long fill(long bytes, LongSupplier room) {
        long allocated = 0;
        while (allocated + chunkBytes <= bytes && room.getAsLong() >= chunkBytes) {
            synchronized (this) {
                if (closed || keptBytes + chunkBytes > capacityBytes) {
                    break;
                }
            }
            ByteBuffer chunk;
            try {
                chunk = DirectMemory.allocate(chunkBytes);
            } catch (OutOfMemoryError e) {
                // The JVM's direct-memory limit, or no more memory to map: what is kept stays, VMs get the rest.
                break;
            }
            DirectMemory.touch(chunk);
            synchronized (this) {
                if (closed || keptBytes + chunkBytes > capacityBytes) {
                    DirectMemory.free(chunk);
                    break;
                }
                keptBytes += chunkBytes;
                clean.addLast(chunk);
                notifyAll();
            }
            allocated += chunkBytes;
        }
        return allocated;
    }

    /** Frees kept chunks until at least {@code bytes} are freed or none is left; returns the bytes freed. */
    public long trim(long bytes) {
        List<ByteBuffer> freed = new ArrayList<>();
        synchronized (this) {
            while ((long) freed.size() * chunkBytes < bytes) {
                ByteBuffer chunk = toScrub.pollFirst();
                if (chunk == null) {
                    chunk = clean.pollLast();
                }
                if (chunk == null) {
                    break;
                }
                keptBytes -= chunkBytes;
                freed.add(chunk);
            }
        }
        freed.forEach(DirectMemory::free);
        return (long) freed.size() * chunkBytes;
    }

    /** Frees everything kept; chunks given afterwards are freed at once. */
    @Override
    public void close() {
        List<Thread> threads = new ArrayList<>();
        synchronized (this) {
            closed = true;
            for (Thread thread : new Thread[] {scrubber, prefiller}) {
                if (thread != null) {
                    threads.add(thread);
                }
            }
            notifyAll();
        }
        for (Thread thread : threads) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        trim(Long.MAX_VALUE);
    }

    /** Called holding the lock. */
    private void startScrubber() {
        if (scrubber == null) {
            scrubber = new Thread(this::scrub, "ferry-memory-scrubber");
            scrubber.setDaemon(true);
            scrubber.start();
        }
    }

    private void scrub() {
        while (true) {
            ByteBuffer chunk;
            synchronized (this) {
                while ((chunk = toScrub.pollFirst()) == null) {
                    if (closed) {
                        return;
                    }
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                scrubbing++;
            }
            zero(chunk);
            synchronized (this) {
                scrubbing--;
                clean.addFirst(chunk);
                notifyAll();
            }
        }
    }

    private static void zero(ByteBuffer chunk) {
        for (int offset = 0; offset < chunk.capacity(); offset += ZERO_BLOCK) {
            chunk.put(offset, ZEROS, 0, ZERO_BLOCK);
        }
    }
}
