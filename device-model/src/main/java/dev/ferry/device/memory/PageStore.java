package dev.ferry.device.memory;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Off-heap pages, in direct buffers of one chunk each, so that a store may exceed 2 GiB and the
 * heap never holds guest data.
 *
 * <p>Chunks are allocated on the first write that touches them; a chunk never written reads as
 * zeros. That makes an idle store cheap to create, to scan for zero pages, and to digest.
 *
 * <p>Every access uses absolute buffer positions, so any number of threads may read and write
 * concurrently; what a racing reader sees of a racing writer's bytes is unspecified, exactly as
 * with real memory. Callers that need a consistent view use the dirty logs.
 *
 * <p>Every write path (writes, page loads, zeroing, {@link #clear()}, a chunk taken for overwrite,
 * {@link #release()}) also marks the change logs opened with {@link #openChangeLog()}, one bit per
 * {@link #changeUnitBytes()} unit, after the bytes are in place: what an incremental digest
 * ({@link MemoryDigest}) needs to hash again. With no log open that costs one volatile read per write;
 * with one, one atomic bit set per unit touched. (Allocating a chunk changes nothing: it reads as zeros
 * before and after.)
 */
public final class PageStore {
    /** Default chunk: 2 MiB, a huge page. */
    public static final int DEFAULT_CHUNK_BYTES = 2 << 20;
    /**
     * At most this many change units per store: the unit is the smallest power of two of at least a page
     * that keeps a store under it, so a page up to 4 GiB (a dirtied page costs the frozen-point digest
     * only itself), and per-unit state (8 bytes a unit in {@link MemoryDigest}) stays at 8 MiB per
     * store whatever its size. The unit depends on the size only, never on the chunk size, so two stores
     * of one size always agree on it (a VM and its migrated copy).
     */
    public static final int MAX_CHANGE_UNITS = 1 << 20;

    private static final DirtyBitmap[] NO_LOGS = new DirtyBitmap[0];

    private static final ByteBuffer ZERO_PAGE = ByteBuffer.allocateDirect(PageGeometry.PAGE_SIZE).asReadOnlyBuffer();

    private final long sizeBytes;
    private final long pages;
    private final int chunkBytes;
    private final int chunkShift;
    private final int pagesPerChunk;
    private final AtomicReferenceArray<ByteBuffer> chunks;
    private final ChunkPool pool;
    private final int unitShift;
    private final long units;
    private volatile DirtyBitmap[] changeLogs = NO_LOGS;
    /** Readers that may run beside {@link #release()} (a background digest) hold the read side. */
    private final ReentrantReadWriteLock releaseLock = new ReentrantReadWriteLock();
    private volatile boolean released;

    public PageStore(long sizeBytes) {
        this(sizeBytes, DEFAULT_CHUNK_BYTES, ChunkPool.NONE);
    }

    public PageStore(long sizeBytes, int chunkBytes) {
        this(sizeBytes, chunkBytes, ChunkPool.NONE);
    }

    /** A store whose chunks come from and go back to {@code pool}. */
    public PageStore(long sizeBytes, int chunkBytes, ChunkPool pool) {
        PageGeometry.requireAligned(sizeBytes, "memory size");
        if (Integer.bitCount(chunkBytes) != 1 || chunkBytes < PageGeometry.PAGE_SIZE) {
            throw new IllegalArgumentException("chunk size must be a power of two >= one page: " + chunkBytes);
        }
        this.sizeBytes = sizeBytes;
        this.pages = sizeBytes >>> PageGeometry.PAGE_SHIFT;
        this.chunkBytes = (int) Math.min(chunkBytes, Math.max(PageGeometry.PAGE_SIZE, Long.highestOneBit(Math.max(1, sizeBytes))));
        this.chunkShift = Integer.numberOfTrailingZeros(this.chunkBytes);
        this.pagesPerChunk = this.chunkBytes >>> PageGeometry.PAGE_SHIFT;
        long chunkCount = (sizeBytes + this.chunkBytes - 1) >>> chunkShift;
        if (chunkCount > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("memory too large: " + sizeBytes);
        }
        this.chunks = new AtomicReferenceArray<>((int) chunkCount);
        this.pool = pool;
        this.unitShift = changeUnitShift(sizeBytes);
        this.units = (sizeBytes + (1L << unitShift) - 1) >>> unitShift;
    }

    /** log2 of the change unit of a store of {@code sizeBytes}: see {@link #MAX_CHANGE_UNITS}. */
    static int changeUnitShift(long sizeBytes) {
        int shift = PageGeometry.PAGE_SHIFT;
        while ((sizeBytes + (1L << shift) - 1) >>> shift > MAX_CHANGE_UNITS) {
            shift++;
        }
        return shift;
    }

    public long sizeBytes() {
        return sizeBytes;
    }

    public long pages() {
        return pages;
    }

    public int pagesPerChunk() {
        return pagesPerChunk;
    }

    /** Whether the chunk holding {@code page} was ever written; if not, the page is zero. */
    public boolean isBacked(long page) {
        checkPage(page);
        return chunks.get((int) (page / pagesPerChunk)) != null;
    }

    /** Number of pages in chunks that were written at least once, within {@code [from, to)}. */
    public long backedPagesIn(long from, long to) {
        if (from >= to) {
            return 0;
        }
        long count = 0;
        long page = from;
        while (page < to) {
            int chunk = (int) (page / pagesPerChunk);
            long chunkEnd = Math.min(to, (long) (chunk + 1) * pagesPerChunk);
            if (chunks.get(chunk) != null) {
                count += chunkEnd - page;
            }
            page = chunkEnd;
        }
        return count;
    }

    /** Whether every byte of the page is zero. */
    public boolean isZeroPage(long page) {
        ByteBuffer chunk = chunkOrNull(page);
        if (chunk == null) {
            return true;
        }
        int offset = offsetInChunk(page);
        return chunk.slice(offset, PageGeometry.PAGE_SIZE).mismatch(ZERO_PAGE.duplicate()) == -1;
    }

    /**
     * A read-only view of one page without copying, or {@code null} for a page never written
     * (which is zero). The view sees later writes.
     */
    public ByteBuffer pageView(long page) {
        ByteBuffer chunk = chunkOrNull(page);
        if (chunk == null) {
            return null;
        }
        return chunk.slice(offsetInChunk(page), PageGeometry.PAGE_SIZE).asReadOnlyBuffer();
    }

    /**
     * A read-only view of {@code count} consecutive pages from {@code first} without copying, when they
     * lie in one written chunk; {@code null} otherwise. The view sees later writes.
     */
    public ByteBuffer pagesView(long first, int count) {
        if (count < 1) {
            throw new IllegalArgumentException("count " + count);
        }
        checkPage(first + count - 1);
        if (first / pagesPerChunk != (first + count - 1) / pagesPerChunk) {
            return null;
        }
        ByteBuffer chunk = chunkOrNull(first);
        if (chunk == null) {
            return null;
        }
        return chunk.slice(offsetInChunk(first), count << PageGeometry.PAGE_SHIFT).asReadOnlyBuffer();
    }

    /**
     * A writable view of {@code count} consecutive pages from {@code first}, when they lie in one chunk
     * (allocated now if it is not yet), for a receiver that writes them in place (a migration destination
     * reading pages straight from a socket); {@code null} when they span chunks. The writer calls
     * {@link #placed} once the bytes are in, so that change logs see them.
     */
    public ByteBuffer placementView(long first, int count) {
        if (count < 1) {
            throw new IllegalArgumentException("count " + count);
        }
        checkPage(first);
        checkPage(first + count - 1);
        if (first / pagesPerChunk != (first + count - 1) / pagesPerChunk) {
            return null;
        }
        return chunk(first).slice(offsetInChunk(first), count << PageGeometry.PAGE_SHIFT);
    }

    /** Pages written through a {@link #placementView} are in: the change logs learn of them. */
    public void placed(long first, int count) {
        checkPage(first);
        checkPage(first + count - 1);
        changed(first << PageGeometry.PAGE_SHIFT, (long) count << PageGeometry.PAGE_SHIFT);
    }

    /** Copies one page into {@code dst} at its position, advancing it by a page. */
    public void readPage(long page, ByteBuffer dst) {
        ByteBuffer chunk = chunkOrNull(page);
        if (dst.remaining() < PageGeometry.PAGE_SIZE) {
            throw new IllegalArgumentException("destination has room for less than a page");
        }
        if (chunk == null) {
            dst.put(ZERO_PAGE.duplicate());
        } else {
            dst.put(chunk.slice(offsetInChunk(page), PageGeometry.PAGE_SIZE));
        }
    }

    /** Replaces one page with the next page-size bytes of {@code src}, advancing it. */
    public void writePage(long page, ByteBuffer src) {
        if (src.remaining() < PageGeometry.PAGE_SIZE) {
            throw new IllegalArgumentException("source holds less than a page");
        }
        chunk(page).put(offsetInChunk(page), src, src.position(), PageGeometry.PAGE_SIZE);
        src.position(src.position() + PageGeometry.PAGE_SIZE);
        changed(page << PageGeometry.PAGE_SHIFT, PageGeometry.PAGE_SIZE);
    }

    /** Sets one page to zeros; a page never written is zero already and stays unbacked. */
    public void zeroPage(long page) {
        ByteBuffer chunk = chunkOrNull(page);
        if (chunk != null) {
            chunk.put(offsetInChunk(page), ZERO_PAGE, 0, PageGeometry.PAGE_SIZE);
            changed(page << PageGeometry.PAGE_SHIFT, PageGeometry.PAGE_SIZE);
        }
    }

    /** Copies {@code length} bytes at {@code address} into {@code dst[off..]}. May cross pages. */
    public void read(long address, byte[] dst, int off, int length) {
        checkRange(address, length);
        while (length > 0) {
            int chunkIndex = (int) (address >>> chunkShift);
            int inChunk = (int) (address & (chunkBytes - 1));
            int n = Math.min(length, chunkBytes - inChunk);
            ByteBuffer chunk = chunks.get(chunkIndex);
            if (chunk == null) {
                java.util.Arrays.fill(dst, off, off + n, (byte) 0);
            } else {
                chunk.get(inChunk, dst, off, n);
            }
            address += n;
            off += n;
            length -= n;
        }
    }

    /** Writes {@code src[off..off+length)} at {@code address}. May cross pages. */
    public void write(long address, byte[] src, int off, int length) {
        checkRange(address, length);
        long start = address;
        int total = length;
        while (length > 0) {
            int chunkIndex = (int) (address >>> chunkShift);
            int inChunk = (int) (address & (chunkBytes - 1));
            int n = Math.min(length, chunkBytes - inChunk);
            chunkAt(chunkIndex).put(inChunk, src, off, n);
            address += n;
            off += n;
            length -= n;
        }
        changed(start, total);
    }

    /** Reads an 8-byte little-endian value; must not cross a page. */
    public long readLong(long address) {
        checkRange(address, 8);
        ByteBuffer chunk = chunks.get((int) (address >>> chunkShift));
        return chunk == null ? 0 : Long.reverseBytes(chunk.getLong((int) (address & (chunkBytes - 1))));
    }

    /** Writes an 8-byte little-endian value; must not cross a chunk. */
    public void writeLong(long address, long value) {
        checkRange(address, 8);
        chunkAt((int) (address >>> chunkShift)).putLong((int) (address & (chunkBytes - 1)), Long.reverseBytes(value));
        changed(address, 8);
    }

    /** Drops every chunk: the whole store reads as zeros again. */
    public void clear() {
        for (int i = 0; i < chunks.length(); i++) {
            chunks.set(i, null);
        }
        changed(0, sizeBytes);
    }

    /** Bytes per chunk: the unit of lazy allocation. */
    public int chunkBytes() {
        return chunkBytes;
    }

    /** Number of chunks. */
    public int chunks() {
        return chunks.length();
    }

    /** Whether a chunk was ever written (is allocated). */
    public boolean chunkBacked(int chunk) {
        return chunks.get(chunk) != null;
    }

    /**
     * Allocates a chunk now if it is not yet: lets a caller pay the cost of allocating and zeroing
     * memory ahead of the writes (a destination preparing for incoming pages) instead of on them.
     */
    public void allocateChunk(int chunk) {
        chunkAt(chunk);
    }

    /**
     * Gives a chunk that is not allocated yet memory the pool kept, as it is: it may hold anything, so
     * this is for a caller that writes every page of the chunk before anything reads it (a migration
     * destination before the first pass, which carries every page). Returns false, and allocates
     * nothing, if the chunk is allocated already or the pool keeps nothing to give.
     */
    public boolean allocateChunkForOverwrite(int chunk) {
        if (chunks.get(chunk) != null) {
            return false;
        }
        if (released) {
            throw new IllegalStateException("memory was released");
        }
        long start = (long) chunk << chunkShift;
        int length = (int) Math.min(chunkBytes, sizeBytes - start);
        ByteBuffer buffer = pool.takeKept(length);
        if (buffer == null) {
            return false;
        }
        if (chunks.compareAndSet(chunk, null, buffer)) {
            // Whatever the kept chunk holds is this store's content until it is overwritten.
            changed(start, length);
            return true;
        }
        pool.give(buffer);
        return false;
    }

    /**
     * Hands the memory back to the pool (which keeps or frees it) now, instead of leaving it to the
     * collector. Only for a store nothing reads or writes any more: a view handed out before must not
     * be used after this.
     */
    public void release() {
        releaseLock.writeLock().lock();
        try {
            released = true;
            for (int i = 0; i < chunks.length(); i++) {
                ByteBuffer chunk = chunks.getAndSet(i, null);
                if (chunk != null) {
                    pool.give(chunk);
                }
            }
            changed(0, sizeBytes);
        } finally {
            releaseLock.writeLock().unlock();
        }
    }

    // ---- change logs -----------------------------------------------------------------------------

    /** Bytes per change unit: a power of two of at least a page (see {@link #MAX_CHANGE_UNITS}). */
    public int changeUnitBytes() {
        return 1 << unitShift;
    }

    /** Number of change units; the last may be shorter than {@link #changeUnitBytes()}. */
    public long changeUnits() {
        return units;
    }

    /**
     * A new change log: one bit per unit, set by every write path after the write, every bit set to
     * begin with (what was written before it opened is unknown to it). Read it with
     * {@link DirtyBitmap#readAndClear()}; close it with {@link #closeChangeLog} when done, or every
     * write keeps marking it.
     */
    public DirtyBitmap openChangeLog() {
        DirtyBitmap log = new DirtyBitmap(units);
        log.start();
        synchronized (this) {
            DirtyBitmap[] now = changeLogs;
            DirtyBitmap[] more = Arrays.copyOf(now, now.length + 1);
            more[now.length] = log;
            changeLogs = more;
        }
        // After it is registered: a write that raced with the registration is covered either way.
        log.markRange(0, units);
        return log;
    }

    /** Stops marking a log {@link #openChangeLog()} returned. */
    public synchronized void closeChangeLog(DirtyBitmap log) {
        DirtyBitmap[] now = changeLogs;
        for (int i = 0; i < now.length; i++) {
            if (now[i] == log) {
                DirtyBitmap[] fewer = new DirtyBitmap[now.length - 1];
                System.arraycopy(now, 0, fewer, 0, i);
                System.arraycopy(now, i + 1, fewer, i, now.length - i - 1);
                changeLogs = now.length == 1 ? NO_LOGS : fewer;
                return;
            }
        }
    }

    /**
     * For a reader that may run while the store is released (a digest refreshed in the background):
     * true and the store cannot be released until {@link #endRead()}; false if it was released already.
     */
    boolean beginRead() {
        releaseLock.readLock().lock();
        if (released) {
            releaseLock.readLock().unlock();
            return false;
        }
        return true;
    }

    void endRead() {
        releaseLock.readLock().unlock();
    }

    /** The buffer of an allocated chunk, or {@code null}; its writes are visible through it. */
    ByteBuffer chunkBuffer(int chunk) {
        return chunks.get(chunk);
    }

    /** Marks the units of {@code [address, address + length)} in every open change log. */
    private void changed(long address, long length) {
        DirtyBitmap[] logs = changeLogs;
        if (logs.length == 0 || length == 0) {
            return;
        }
        long first = address >>> unitShift;
        long last = (address + length - 1) >>> unitShift;
        for (DirtyBitmap log : logs) {
            if (first == last) {
                log.mark(first);
            } else {
                log.markRange(first, last - first + 1);
            }
        }
    }

    private ByteBuffer chunkOrNull(long page) {
        checkPage(page);
        return chunks.get((int) (page / pagesPerChunk));
    }

    private ByteBuffer chunk(long page) {
        checkPage(page);
        return chunkAt((int) (page / pagesPerChunk));
    }

    private ByteBuffer chunkAt(int index) {
        ByteBuffer chunk = chunks.get(index);
        if (chunk != null) {
            return chunk;
        }
        if (released) {
            throw new IllegalStateException("memory was released");
        }
        long start = (long) index << chunkShift;
        int length = (int) Math.min(chunkBytes, sizeBytes - start);
        ByteBuffer fresh = pool.take(length);
        if (chunks.compareAndSet(index, null, fresh)) {
            return fresh;
        }
        pool.give(fresh);
        return chunks.get(index);
    }

    private int offsetInChunk(long page) {
        return (int) ((page % pagesPerChunk) << PageGeometry.PAGE_SHIFT);
    }

    private void checkPage(long page) {
        if (page < 0 || page >= pages) {
            throw new IndexOutOfBoundsException("page " + page + " outside [0, " + pages + ")");
        }
    }

    private void checkRange(long address, int length) {
        if (address < 0 || length < 0 || address + length > sizeBytes) {
            throw new IndexOutOfBoundsException("range [" + address + ", +" + length + ") outside [0, " + sizeBytes + ")");
        }
    }
}
