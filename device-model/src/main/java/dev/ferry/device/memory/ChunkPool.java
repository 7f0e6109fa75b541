package dev.ferry.device.memory;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicLong;

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
 * <p>{@link #NONE} keeps nothing: every chunk is allocated new and freed at once.
 */
public final class ChunkPool implements AutoCloseable {
    /** Keeps nothing. */
    public static final ChunkPool NONE = new ChunkPool(0, PageStore.DEFAULT_CHUNK_BYTES);

    private static final DirectMemory FREE = DirectMemory.find();
    private static final int ZERO_BLOCK = 64 << 10;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(ZERO_BLOCK).asReadOnlyBuffer();

    private final long capacityBytes;
    private final int chunkBytes;
    private final ConcurrentLinkedDeque<ByteBuffer> clean = new ConcurrentLinkedDeque<>();
    private final LinkedBlockingQueue<ByteBuffer> toScrub = new LinkedBlockingQueue<>();
    /** Bytes kept: scrubbed, waiting to be scrubbed, and being scrubbed. */
    private final AtomicLong keptBytes = new AtomicLong();
    private final AtomicLong reused = new AtomicLong();
    private final Object lifecycle = new Object();
    private Thread scrubber;
    private volatile boolean closed;

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

    /** Bytes kept for reuse right now, scrubbed or not yet. */
    public long keptBytes() {
        return keptBytes.get();
    }

    /** Chunks handed out again instead of allocated, since the pool was made. */
    public long reusedChunks() {
        return reused.get();
    }

    /** A zeroed direct buffer of {@code length} bytes: a kept chunk when the length is the chunk size. */
    public ByteBuffer take(int length) {
        if (length == chunkBytes) {
            ByteBuffer chunk = clean.pollFirst();
            if (chunk == null) {
                chunk = toScrub.poll();
                if (chunk != null) {
                    zero(chunk);
                }
            }
            if (chunk != null) {
                keptBytes.addAndGet(-chunkBytes);
                reused.incrementAndGet();
                return chunk;
            }
        }
        return ByteBuffer.allocateDirect(length);
    }

    /**
     * Takes back a chunk nothing reads or writes any more: kept if it is of the chunk size and there is
     * room, freed otherwise.
     */
    public void give(ByteBuffer chunk) {
        if (chunk.capacity() == chunkBytes && !closed && reserve()) {
            toScrub.add(chunk);
            startScrubber();
            if (closed) {
                drain();
            }
            return;
        }
        FREE.free(chunk);
    }

    /** Frees kept chunks until at least {@code bytes} are freed or none is left; returns the bytes freed. */
    public long trim(long bytes) {
        long freed = 0;
        while (freed < bytes) {
            ByteBuffer chunk = toScrub.poll();
            if (chunk == null) {
                chunk = clean.pollLast();
            }
            if (chunk == null) {
                break;
            }
            keptBytes.addAndGet(-chunkBytes);
            FREE.free(chunk);
            freed += chunkBytes;
        }
        return freed;
    }

    /** Frees everything kept; chunks given afterwards are freed at once. */
    @Override
    public void close() {
        Thread thread;
        synchronized (lifecycle) {
            closed = true;
            thread = scrubber;
        }
        if (thread != null) {
            thread.interrupt();
            try {
                thread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        drain();
    }

    private boolean reserve() {
        while (true) {
            long kept = keptBytes.get();
            if (kept + chunkBytes > capacityBytes) {
                return false;
            }
            if (keptBytes.compareAndSet(kept, kept + chunkBytes)) {
                return true;
            }
        }
    }

    private void startScrubber() {
        synchronized (lifecycle) {
            if (scrubber != null || closed) {
                return;
            }
            scrubber = new Thread(this::scrub, "ferry-memory-scrubber");
            scrubber.setDaemon(true);
            scrubber.start();
        }
    }

    private void scrub() {
        try {
            while (!closed) {
                ByteBuffer chunk = toScrub.take();
                zero(chunk);
                clean.addFirst(chunk);
            }
        } catch (InterruptedException e) {
            // Closed.
        }
    }

    private void drain() {
        trim(Long.MAX_VALUE);
    }

    private static void zero(ByteBuffer chunk) {
        for (int offset = 0; offset < chunk.capacity(); offset += ZERO_BLOCK) {
            chunk.put(offset, ZEROS, 0, ZERO_BLOCK);
        }
    }
}
