package dev.ferry.device.memory;

import java.nio.ByteBuffer;

/**
 * A VM's guest memory: 4 KiB pages off-heap, and the two dirty logs of M1: one for vCPU writes and
 * one for device DMA writes through the IOMMU.
 *
 * <p>Every write path marks its log after the bytes are in place (see {@link DirtyBitmap}).
 */
public final class GuestMemory {
    private final PageStore store;
    private final DirtyBitmap vcpuLog;
    private final DirtyBitmap dmaLog;

    public GuestMemory(long sizeBytes) {
        this(sizeBytes, ChunkPool.NONE);
    }

    /** Guest memory whose chunks come from and go back to {@code pool}. */
    public GuestMemory(long sizeBytes, ChunkPool pool) {
        if (sizeBytes <= 0) {
            throw new IllegalArgumentException("guest memory must not be empty");
        }
        this.store = new PageStore(sizeBytes, pool.chunkBytes(), pool);
        this.vcpuLog = new DirtyBitmap(store.pages());
        this.dmaLog = new DirtyBitmap(store.pages());
    }

    public long sizeBytes() {
        return store.sizeBytes();
    }

    public long pages() {
        return store.pages();
    }

    /** Pages dirtied by vCPU writes (M1). */
    public DirtyBitmap vcpuLog() {
        return vcpuLog;
    }

    /** Pages dirtied by device DMA through the IOMMU, logged while DIRTY_TRACKING is on (M1). */
    public DirtyBitmap dmaLog() {
        return dmaLog;
    }

    public PageStore store() {
        return store;
    }

    /** The chunks that hold data, one bit each ({@link PageStore#chunkBytes()} per chunk). */
    public java.util.BitSet backedChunks() {
        java.util.BitSet backed = new java.util.BitSet(store.chunks());
        for (int chunk = 0; chunk < store.chunks(); chunk++) {
            if (store.chunkBacked(chunk)) {
                backed.set(chunk);
            }
        }
        return backed;
    }

    /** Gives the memory back; nothing may read or write it afterwards (see {@link PageStore#release()}). */
    public void release() {
        store.release();
    }

    // ---- vCPU side ---------------------------------------------------------------------------

    /** A guest store: writes then marks the vCPU log. */
    public void vcpuWrite(long address, byte[] src, int off, int length) {
        store.write(address, src, off, length);
        markRange(vcpuLog, address, length);
    }

    /** A guest store of one 8-byte value: writes then marks the vCPU log. */
    public void vcpuWriteLong(long address, long value) {
        store.writeLong(address, value);
        vcpuLog.mark(address >>> PageGeometry.PAGE_SHIFT);
    }

    public void read(long address, byte[] dst, int off, int length) {
        store.read(address, dst, off, length);
    }

    public long readLong(long address) {
        return store.readLong(address);
    }

    // ---- device side (called by the IOMMU only) ------------------------------------------------

    /** A DMA write: writes then marks the DMA log. */
    public void dmaWrite(long address, byte[] src, int off, int length) {
        store.write(address, src, off, length);
        markRange(dmaLog, address, length);
    }

    // ---- migration side ----------------------------------------------------------------------

    public boolean isZeroPage(long page) {
        return store.isZeroPage(page);
    }

    /** A read-only view of a page without copying, or {@code null} when the page was never written. */
    public ByteBuffer pageView(long page) {
        return store.pageView(page);
    }

    /** See {@link PageStore#pagesView(long, int)}. */
    public ByteBuffer pagesView(long first, int count) {
        return store.pagesView(first, count);
    }

    /** Copies one page into {@code dst}. */
    public void readPage(long page, ByteBuffer dst) {
        store.readPage(page, dst);
    }

    /** Replaces one page with incoming bytes (destination side); no log is marked. */
    public void loadPage(long page, ByteBuffer src) {
        store.writePage(page, src);
    }

    /** Sets one page to zeros (destination side); no log is marked. */
    public void loadZeroPage(long page) {
        store.zeroPage(page);
    }

    private static void markRange(DirtyBitmap log, long address, int length) {
        if (length == 0) {
            return;
        }
        long first = address >>> PageGeometry.PAGE_SHIFT;
        long last = (address + length - 1) >>> PageGeometry.PAGE_SHIFT;
        log.markRange(first, last - first + 1);
    }
}
