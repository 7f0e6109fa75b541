package dev.ferry.protocol.compression;

import dev.ferry.protocol.Frame;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.nio.ByteBuffer;

/**
 * Turns PAGES frames into COMPRESSED_PAGES frames, for one sender thread. The page bytes of a frame are
 * gathered into one block (they are views of guest memory, in as many pieces as the frame has runs) and
 * compressed together; the frame goes compressed only when that makes it smaller, else as it was. Zero
 * pages cost nothing either way: they are entries without bytes.
 */
public final class FrameCompressor implements AutoCloseable {
    private static final int MAX_PAGE_BYTES = Frame.Pages.MAX_PAGES * Frame.Pages.PAGE_SIZE;

    private final PageCodec codec;
    private final PageCodec.Compressor compressor;
    private final ByteBuf staging;
    private long pageBytes;

    public FrameCompressor(PageCodec codec, ByteBufAllocator allocator) {
        this.codec = codec;
        this.compressor = codec.compressor();
        try {
            this.staging = allocator.directBuffer(MAX_PAGE_BYTES, MAX_PAGE_BYTES);
        } catch (RuntimeException | Error e) {
            compressor.close();
            throw e;
        }
    }

    /**
     * {@code pages} compressed, or {@code pages} itself when compressing does not make the frame smaller.
     * A compressed frame replaces {@code pages}, which is then released; when this throws, {@code pages} is
     * still the caller's.
     */
    public Frame compress(Frame.Pages pages, ByteBufAllocator allocator) {
        int raw = (pages.count() - pages.zeroPages()) * Frame.Pages.PAGE_SIZE;
        if (raw == 0) {
            return pages;
        }
        ByteBuf content = pages.content();
        int meta = Frame.Pages.metaBytes(pages.count());
        staging.clear();
        content.getBytes(content.readerIndex() + meta, staging, raw);
        staging.writerIndex(raw);
        ByteBuf out = allocator.directBuffer(meta + 1 + compressor.bound(raw));
        boolean sent = false;
        try {
            out.writeBytes(content, content.readerIndex(), meta).writeByte(codec.code());
            ByteBuffer src = staging.nioBuffer(0, raw);
            ByteBuffer dst = out.nioBuffer(out.writerIndex(), out.writableBytes());
            int block = compressor.compress(src, src.position(), raw, dst);
            // The codec byte is the price: a frame goes compressed only when it comes out smaller.
            if (1 + block >= raw) {
                return pages;
            }
            out.writerIndex(out.writerIndex() + block);
            pageBytes += raw;
            Frame compressed = new Frame.CompressedPages(pages.count(), pages.zeroPages(), out);
            sent = true;
            pages.release();
            return compressed;
        } finally {
            if (!sent) {
                out.release();
            }
        }
    }

    /** Bytes of pages that went compressed so far. */
    public long pageBytes() {
        return pageBytes;
    }

    @Override
    public void close() {
        compressor.close();
        staging.release();
    }
}
