package dev.ferry.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * Builds one PAGES frame of up to {@link Frame.Pages#MAX_PAGES} pages, each page's CRC32C in its entry.
 *
 * <p>Pages go into the frame as views of the memory they lie in ({@link #addPage}, {@link #addRun}): no
 * copy. The CRC is taken as the page is added; if the page changes before the frame is written (a running
 * guest), the destination finds it torn and a later pass sends it again, since the change is in the
 * source's dirty log by then (see {@link Frame.Pages}). {@link #addCopy} copies a page first, for a
 * caller whose buffer does not outlive the call.
 */
public final class PagesBuilder {
    private final ByteBufAllocator allocator;
    private final int iteration;
    private final CRC32C crc = new CRC32C();
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
        entry(index | Frame.Pages.ZERO_FLAG, 0);
        return this;
    }

    /** Copies the page's 4096 bytes from {@code page}'s position now. */
    public PagesBuilder addCopy(long index, ByteBuffer page) {
        checkPage(page);
        if (copies == null) {
            copies = allocator.directBuffer(Frame.Pages.PAGE_SIZE * (Frame.Pages.MAX_PAGES - count));
        }
        int at = copies.writerIndex();
        copies.writeBytes(page.duplicate().limit(page.position() + Frame.Pages.PAGE_SIZE));
        entry(index, crc(copies.nioBuffer(at, Frame.Pages.PAGE_SIZE)));
        pageBytes += Frame.Pages.PAGE_SIZE;
        return this;
    }

    /** Sends the page's memory itself, without a copy. */
    public PagesBuilder addPage(long index, ByteBuffer page) {
        checkPage(page);
        ByteBuffer view = page.duplicate().limit(page.position() + Frame.Pages.PAGE_SIZE);
        entry(index, crc(view.duplicate()));
        sealCopies();
        data.addComponent(true, Unpooled.wrappedBuffer(view));
        pageBytes += Frame.Pages.PAGE_SIZE;
        return this;
    }

    /**
     * Sends {@code count} consecutive pages from {@code first} as one piece of memory, {@code run}'s
     * bytes from its position, without a copy.
     */
    public PagesBuilder addRun(long first, int count, ByteBuffer run) {
        if (count < 1 || count > room()) {
            throw new IllegalArgumentException(count + " pages with room for " + room());
        }
        if (run.remaining() < count * Frame.Pages.PAGE_SIZE) {
            throw new IllegalArgumentException(count + " pages are " + count * Frame.Pages.PAGE_SIZE + " bytes; got " + run.remaining());
        }
        ByteBuffer view = run.duplicate().limit(run.position() + count * Frame.Pages.PAGE_SIZE);
        for (int i = 0; i < count; i++) {
            int at = view.position() + i * Frame.Pages.PAGE_SIZE;
            entry(first + i, crc(view.duplicate().position(at).limit(at + Frame.Pages.PAGE_SIZE)));
        }
        sealCopies();
        data.addComponent(true, Unpooled.wrappedBuffer(view));
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

    private int crc(ByteBuffer page) {
        crc.reset();
        crc.update(page);
        return (int) crc.getValue();
    }

    private void entry(long entry, int pageCrc) {
        if (isFull()) {
            throw new IllegalStateException("a PAGES frame holds at most " + Frame.Pages.MAX_PAGES + " pages");
        }
        if (entries == null) {
            entries = allocator.directBuffer(Frame.Pages.metaBytes(Frame.Pages.MAX_PAGES));
            entries.writeZero(Frame.Pages.PREFIX_BYTES);
            data = allocator.compositeDirectBuffer(Frame.Pages.MAX_PAGES + 2);
        }
        entries.writeLong(entry).writeInt(pageCrc);
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
