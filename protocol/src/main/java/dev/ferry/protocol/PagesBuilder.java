package dev.ferry.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import java.nio.ByteBuffer;

/**
 * Builds one PAGES frame of up to {@link Frame.Pages#MAX_PAGES} pages.
 *
 * <p>The CRC covers the bytes the encoder writes. A page that may change before then (a running
 * guest's memory) must be added with {@link #addCopy}, which copies it now, so the frame is
 * consistent; the newer content is sent again in a later iteration. A page that cannot change until
 * the frame is written (a paused guest, or stop-and-copy) may be added with {@link #addStable},
 * which sends the memory itself without a copy.
 */
public final class PagesBuilder {
    private static final int PREFIX = 6;

    private final ByteBufAllocator allocator;
    private final int iteration;
    private ByteBuf entries;
    private CompositeByteBuf data;
    private ByteBuf copies;
    private int count;
    private long pageBytes;

    public PagesBuilder(ByteBufAllocator allocator, int iteration) {
        this.allocator = allocator;
        this.iteration = iteration;
    }

    public int count() {
        return count;
    }

    public boolean isEmpty() {
        return count == 0;
    }

    public boolean isFull() {
        return count == Frame.Pages.MAX_PAGES;
    }

    /** Bytes of page data (not counting entries) in the frame. */
    public long pageBytes() {
        return pageBytes;
    }

    /** A zero page: its entry only. */
    public PagesBuilder addZero(long index) {
        entry(index | Frame.Pages.ZERO_FLAG);
        return this;
    }

    /** Copies the page's 4096 bytes from {@code page}'s position now. */
    public PagesBuilder addCopy(long index, ByteBuffer page) {
        checkPage(page);
        entry(index);
        if (copies == null) {
            copies = allocator.directBuffer(Frame.Pages.PAGE_SIZE * (Frame.Pages.MAX_PAGES - count + 1));
        }
        copies.writeBytes(page.duplicate().limit(page.position() + Frame.Pages.PAGE_SIZE));
        pageBytes += Frame.Pages.PAGE_SIZE;
        return this;
    }

    /** Sends the page's memory itself; it must not change until the frame has been written. */
    public PagesBuilder addStable(long index, ByteBuffer page) {
        checkPage(page);
        entry(index);
        sealCopies();
        data.addComponent(true, Unpooled.wrappedBuffer(page.duplicate().limit(page.position() + Frame.Pages.PAGE_SIZE)));
        pageBytes += Frame.Pages.PAGE_SIZE;
        return this;
    }

    /**
     * Sends {@code count} consecutive pages from {@code first} as one piece of memory, {@code run}'s
     * bytes from its position; they must not change until the frame has been written.
     */
    public PagesBuilder addStableRun(long first, int count, ByteBuffer run) {
        if (count < 1 || count > room()) {
            throw new IllegalArgumentException(count + " pages with room for " + room());
        }
        if (run.remaining() < count * Frame.Pages.PAGE_SIZE) {
            throw new IllegalArgumentException(count + " pages are " + count * Frame.Pages.PAGE_SIZE + " bytes; got " + run.remaining());
        }
        for (int i = 0; i < count; i++) {
            entry(first + i);
        }
        sealCopies();
        data.addComponent(true, Unpooled.wrappedBuffer(run.duplicate().limit(run.position() + count * Frame.Pages.PAGE_SIZE)));
        pageBytes += (long) count * Frame.Pages.PAGE_SIZE;
        return this;
    }

    /** Pages that still fit in the frame. */
    public int room() {
        return Frame.Pages.MAX_PAGES - count;
    }

    /** The frame; the builder is empty afterwards. */
    public Frame.Pages build() {
        if (count == 0) {
            throw new IllegalStateException("a PAGES frame needs at least one page");
        }
        sealCopies();
        entries.setInt(0, iteration);
        entries.setShort(4, count);
        CompositeByteBuf content = data.addComponent(true, 0, entries);
        Frame.Pages pages = new Frame.Pages(iteration, count, content);
        entries = null;
        data = null;
        count = 0;
        pageBytes = 0;
        return pages;
    }

    /** Releases what was added without building a frame. */
    public void discard() {
        if (copies != null) {
            copies.release();
            copies = null;
        }
        if (entries != null) {
            entries.release();
            entries = null;
        }
        if (data != null) {
            data.release();
            data = null;
        }
        count = 0;
        pageBytes = 0;
    }

    private void entry(long entry) {
        if (isFull()) {
            throw new IllegalStateException("a PAGES frame holds at most " + Frame.Pages.MAX_PAGES + " pages");
        }
        if (entries == null) {
            entries = allocator.directBuffer(PREFIX + 8 * Frame.Pages.MAX_PAGES);
            entries.writeZero(PREFIX);
            data = allocator.compositeDirectBuffer(Frame.Pages.MAX_PAGES + 2);
        }
        entries.writeLong(entry);
        count++;
    }

    private void sealCopies() {
        if (copies != null) {
            data.addComponent(true, copies);
            copies = null;
        }
    }

    private static void checkPage(ByteBuffer page) {
        if (page.remaining() < Frame.Pages.PAGE_SIZE) {
            throw new IllegalArgumentException("a page is " + Frame.Pages.PAGE_SIZE + " bytes; got " + page.remaining());
        }
    }
}
