package dev.ferry.protocol;

import dev.ferry.protocol.compression.PageCodec;
import dev.ferry.protocol.transfer.PagePlacement;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.DecoderException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * Reads frames, strictly. The header is checked as soon as its 16 bytes are in (type, length
 * against the type's limits, flags, sequence), so garbage or an oversize length fails before any
 * payload is buffered; a peer can make this decoder hold at most one frame of its type's maximum.
 * The CRC is then checked over the bytes exactly as received, and the payload's structure before
 * the frame is passed on. After the first error every further byte is discarded: nothing a peer
 * sends past the point of failure is delivered.
 *
 * <p>The types a peer may send can be narrowed ({@link #allowOnly}): a handshake accepts only its next
 * frame, so a peer that has proven nothing cannot make the decoder wait for, or hold, the payload of a
 * session frame; a frame of another type fails as {@code out_of_order} as soon as its header is in.
 *
 * <p>Page runs and device data are delivered as slices of the received buffers, not copies.
 *
 * <p>With a {@link PagePlacement} (a destination's data channel without TLS), page bytes do not pass
 * through a receive buffer at all: the decoder tells the channel where its next read goes. At a frame
 * boundary it reads at most a header and the largest PAGES meta; once a PAGES frame's meta is in and
 * checked, the rest of the frame is read straight into the pages its entries name: in one scatter read
 * ({@code readv}) for all of its runs of pages that lie together where the channel's descriptor can be had
 * ({@link SocketScatterRead}), else one read per run; either way each page costs one kernel copy and none
 * in user space. A frame's meta is checked before any of
 * its bytes land; each page's bytes are checked against their CRC where they landed, and a page that
 * does not match is reported torn (see {@link Frame.Pages}). The destination's memory is scratch until
 * the commit (F11), so bytes that land and then fail their check are never run or read.
 */
public final class FrameDecoder extends ByteToMessageDecoder {
    /** A decoding failure; its cause is the {@link ProtocolException}. */
    public static final class FrameException extends DecoderException {
        FrameException(ProtocolException cause) {
            super(cause.toString(), cause);
        }

        public ProtocolException protocolException() {
            return (ProtocolException) getCause();
        }
    }

    /** At a frame boundary while placing: a header and the meta of the largest PAGES frame, no more. */
    static final int READ_AHEAD = FrameHeader.BYTES + Frame.Pages.PREFIX_BYTES + Frame.Pages.ENTRY_BYTES * Frame.Pages.MAX_PAGES;
    /**
     * The most read at once: page runs are 256 KiB, so large pieces mean fewer system calls and fewer
     * pieces per frame. Not larger: Netty pools buffers up to 256 KiB when the heap is small (ferryd's
     * is), and a larger one is allocated and zeroed anew for every read. (Measured: 128 KiB reads are
     * slower, 1 MiB ones no faster.)
     */
    private static final int MAX_READ = 256 << 10;

    /**
     * A read that filled little of its buffer (a peer trickling bytes, or the tail of what the socket had) is
     * copied into a buffer of its own size before it joins the frame being gathered; a read that filled most of
     * its buffer joins as it is. Large frames arrive in many reads, and composing them avoids a copy per read;
     * but composed as they are, a peer sending a byte per segment would make each byte hold a whole read buffer
     * (256 KiB), before it has proven anything. So what a frame in progress holds stays near its bytes.
     */
    static final Cumulator COMPACT_COMPOSITE = (alloc, cumulation, in) -> {
        int readable = in.readableBytes();
        if (in.capacity() - readable > Math.max(4096, readable)) {
            ByteBuf compact = alloc.ioBuffer(readable, readable);
            try {
                compact.writeBytes(in);
            } catch (RuntimeException | Error e) {
                compact.release();
                in.release();
                throw e;
            }
            in.release();
            in = compact;
        }
        return COMPOSITE_CUMULATOR.cumulate(alloc, cumulation, in);
    };

    private final int maxPayload;
    private PagePlacement placement;
    /** The PAGES frame whose page bytes are being read into place, or null. */
    private Placing placing;
    /** The buffer over guest memory last handed to the channel to read into. */
    private ByteBuf target;
    /** Page bytes read straight into their pages, and those that came with a frame's meta and were copied. */
    private long placedBytes;
    private long copiedBytes;
    /** Scatter reads of the socket (one per frame of scattered pages, when it has all of them) and their bytes. */
    private SocketScatterRead scatter;
    private long scatterReads;
    private long scatteredBytes;
    /** What scatter reads took in this turn of the event loop: the turn's bound counts them ({@link PlacingReads}). */
    private long turnScatteredBytes;
    /** A scatter read's places, at most one per page of a frame. */
    private final long[] scatterAddresses = new long[Frame.Pages.MAX_PAGES];
    private final int[] scatterLengths = new int[Frame.Pages.MAX_PAGES];
    private final EnumSet<FrameType> allowed = EnumSet.allOf(FrameType.class);
    /** One per codec a peer used, made at its first COMPRESSED_PAGES frame; closed with the decoder. */
    private final java.util.EnumMap<PageCodec, PageCodec.Decompressor> decompressors = new java.util.EnumMap<>(PageCodec.class);
    private int expectedSequence;
    private boolean failed;
    private volatile ProtocolException failure;
    /** When bytes last arrived, frame or not: a frame trickling in over a slow link is progress too. */
    private volatile long lastReadNanos = System.nanoTime();

    public FrameDecoder() {
        this(FrameType.MAX_PAYLOAD);
    }

    public FrameDecoder(int maxPayload) {
        this.maxPayload = maxPayload;
        setCumulator(COMPACT_COMPOSITE);
    }

    /**
     * Why decoding stopped, or null. Set before the failure is thrown, so a handler that learns of the
     * channel's end first (the end of input is reported before the decoder's failure) still knows.
     */
    public ProtocolException failure() {
        return failure;
    }

    /** Page bytes read from the socket straight into their pages; read on the channel's event loop. */
    public long placedBytes() {
        return placedBytes;
    }

    /** Page bytes of placed frames that arrived with a frame's meta and were copied into place. */
    public long copiedPageBytes() {
        return copiedBytes;
    }

    /** Scatter reads made: each read page bytes of one frame into several runs at once. */
    public long scatterReads() {
        return scatterReads;
    }

    /** Page bytes read by scatter reads (counted in {@link #placedBytes} too). */
    public long scatteredBytes() {
        return scatteredBytes;
    }

    /** When the last bytes arrived from the peer ({@link System#nanoTime()}). */
    public long lastReadNanos() {
        return lastReadNanos;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
        lastReadNanos = System.nanoTime();
        if (msg != null && msg == target) {
            // Bytes read straight into their pages: nothing to cumulate, only the progress to note.
            target = null;
            ByteBuf read = (ByteBuf) msg;
            int n = read.readableBytes();
            read.release();
            placedBytes += n;
            if (!failed && placing != null) {
                placing.advance(n);
                if (placing.done()) {
                    ctx.fireChannelRead(finishPlacing());
                }
            }
        } else {
            super.channelRead(ctx, msg);
        }
        scatterPlacing(ctx);
    }

    /**
     * While the frame being placed still has two or more runs to come, reads as much of them as the socket
     * holds in one scatter read, and again while that fills them; the channel's own reads take over when the
     * socket is empty (they wait for more) or one run is left (a plain read is as good). Only while the
     * decoder is the first handler of the pipeline: a scatter read takes bytes past every handler before it,
     * and one there (a capture tap recording what the channel reads, TLS) must see them all.
     */
    private void scatterPlacing(ChannelHandlerContext ctx) {
        if (scatter == null || placing == null || placing.runsLeft() < 2 || ctx.pipeline().firstContext() != ctx) {
            return;
        }
        while (!failed && placing != null && placing.runsLeft() > 1 && !internalBuffer().isReadable()) {
            long n = placing.scatterFrom(scatter, scatterAddresses, scatterLengths);
            if (n <= 0) {
                // Nothing there yet, or the end of the stream or an error, which the channel's next read meets.
                return;
            }
            scatterReads++;
            scatteredBytes += n;
            placedBytes += n;
            turnScatteredBytes += n;
            if (placing.done()) {
                ctx.fireChannelRead(finishPlacing());
            }
        }
    }

    /**
     * From the next PAGES frame on, page bytes are read straight into the places {@code placement}
     * gives; on the channel's event loop. Ignored on a channel with TLS, whose bytes must be decrypted
     * in a buffer first.
     */
    public void placeInto(ChannelHandlerContext ctx, PagePlacement placement) {
        if (ctx.pipeline().get(io.netty.handler.ssl.SslHandler.class) != null) {
            return;
        }
        if (!(ctx.channel().config().getRecvByteBufAllocator() instanceof PlacingReads)) {
            throw new IllegalStateException("placing pages needs the channel to read through FrameDecoder.reads(), set before"
                    + " its first read");
        }
        this.placement = placement;
        this.scatter = scatterReader(ctx.channel());
    }

    /** A scatter reader of the channel's socket, or null where the descriptor or {@code readv} cannot be had. */
    private static SocketScatterRead scatterReader(io.netty.channel.Channel channel) {
        if (!(channel instanceof io.netty.channel.unix.UnixChannel unix) || !(channel instanceof io.netty.channel.socket.SocketChannel)) {
            return null;
        }
        try {
            return SocketScatterRead.of(unix.fd().intValue(), Frame.Pages.MAX_PAGES);
        } catch (LinkageError e) {
            // A class path without JNA.
            return null;
        }
    }

    /**
     * How the channel reads: set it on the channel before its first read (a channel keeps the read
     * handle it first made). Until pages are placed, reads are of {@link #MAX_READ}.
     */
    public io.netty.channel.RecvByteBufAllocator reads() {
        return new PlacingReads();
    }

    /** The buffer the next read goes into when it goes straight into pages, or null. */
    private ByteBuf nextTarget() {
        if (failed || placing == null || internalBuffer().isReadable()) {
            return null;
        }
        target = Unpooled.wrappedBuffer(placing.space()).clear();
        return target;
    }

    /**
     * How much the next read into a receive buffer may take: the rest of a frame whose header is in
     * (unless it is a PAGES frame, whose meta comes first), else a header and the largest meta, so that
     * the page bytes of a PAGES frame are never read anywhere but into their pages.
     */
    private int nextReadSize() {
        if (placement == null || failed) {
            return MAX_READ;
        }
        ByteBuf in = internalBuffer();
        int readable = in.readableBytes();
        if (readable >= FrameHeader.BYTES) {
            int start = in.readerIndex();
            FrameType type = FrameType.of(in.getUnsignedByte(start + 4));
            long rest = FrameHeader.BYTES + in.getUnsignedInt(start) - readable;
            if (type != FrameType.PAGES && rest > 0) {
                return (int) Math.min(rest, MAX_READ);
            }
        }
        return READ_AHEAD;
    }

    /**
     * Reads placed where {@link #nextTarget} says, else in buffers of {@link #nextReadSize}; each turn of
     * the event loop at most {@value #BYTES_PER_TURN} bytes, in at most {@value #READS_PER_TURN} reads.
     *
     * <p>The turn is bounded in bytes, not only in reads, because a read is worth very different amounts:
     * a frame of 64 consecutive pages lands in one read, a frame of 64 scattered pages (a last pass's dirty
     * pages) in 65. Bounded by 64 reads alone, a channel of another session taking whole runs read up to
     * 64 frames a turn while one taking scattered pages read less than one: with two migrations into one
     * daemon, the second's last 13 MiB once took 355 ms to land while the first's pre-copy went on (17 ms
     * with the second alone). Bounded in bytes, every channel of a loop gets about as many bytes a turn.
     */
    private final class PlacingReads extends io.netty.channel.DefaultMaxMessagesRecvByteBufAllocator {
        PlacingReads() {
            super(READS_PER_TURN);
        }

        @Override
        public Handle newHandle() {
            return new MaxMessageHandle() {
                @Override
                public void reset(io.netty.channel.ChannelConfig config) {
                    turnScatteredBytes = 0;
                    super.reset(config);
                }

                @Override
                public io.netty.buffer.ByteBuf allocate(io.netty.buffer.ByteBufAllocator alloc) {
                    ByteBuf into = nextTarget();
                    return into != null ? into : alloc.ioBuffer(nextReadSize());
                }

                @Override
                public int guess() {
                    return nextReadSize();
                }

                @Override
                public boolean continueReading(io.netty.util.UncheckedBooleanSupplier maybeMoreDataSupplier) {
                    return totalBytesRead() + turnScatteredBytes < BYTES_PER_TURN && super.continueReading(maybeMoreDataSupplier);
                }
            };
        }
    }

    /** What one channel reads in one turn of its event loop at most: four frames of page runs. */
    static final int BYTES_PER_TURN = 1 << 20;
    /** Enough reads for {@link #BYTES_PER_TURN} of scattered pages, each page apart from its frame's meta. */
    static final int READS_PER_TURN = 2 * BYTES_PER_TURN / 4096;

    /**
     * From the next frame on, only frames of these types are accepted. Call on the channel's event loop
     * (a handler that receives a frame may change what the next one can be, even in the same read).
     */
    public void allowOnly(Set<FrameType> types) {
        allowed.clear();
        allowed.addAll(types);
    }

    /** From the next frame on, every type is accepted (the session rules then decide what is in order). */
    public void allowAll() {
        allowed.addAll(EnumSet.allOf(FrameType.class));
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (failed) {
            in.skipBytes(in.readableBytes());
            return;
        }
        try {
            if (placing != null) {
                // Page bytes that came with the meta in one read: copied into place (less than a read-ahead).
                int before = in.readableBytes();
                placing.copyFrom(in);
                copiedBytes += before - in.readableBytes();
                if (placing.done()) {
                    out.add(finishPlacing());
                }
                return;
            }
            Frame frame = next(in);
            if (frame != null) {
                out.add(frame);
            } else if (placing != null && placing.done()) {
                out.add(finishPlacing());
            }
        } catch (ProtocolException e) {
            failed = true;
            dropPlacing();
            failure = e;
            in.skipBytes(in.readableBytes());
            throw new FrameException(e);
        }
    }

    @Override
    protected void decodeLast(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (in.isReadable()) {
            decode(ctx, in, out);
        }
        if (!failed && (in.isReadable() || placing != null)) {
            String where = placing != null ? "the page bytes of a PAGES frame" : in.readableBytes() + " bytes into it";
            failed = true;
            dropPlacing();
            failure = new ProtocolException(ErrorCode.TRUNCATED, "connection closed inside a frame, " + where);
            in.skipBytes(in.readableBytes());
            throw new FrameException(failure);
        }
    }

    @Override
    protected void handlerRemoved0(ChannelHandlerContext ctx) {
        dropPlacing();
        closeDecompressors();
    }

    private void closeDecompressors() {
        decompressors.values().forEach(PageCodec.Decompressor::close);
        decompressors.clear();
    }

    /**
     * A COMPRESSED_PAGES frame whose CRC held: its entries checked as a PAGES frame's, its block decompressed
     * into a buffer of exactly the pages' bytes, and the frame delivered as the PAGES frame it stands for.
     */
    private Frame.Pages decompress(ByteBuf in, int index, int length) throws ProtocolException {
        FrameType type = FrameType.COMPRESSED_PAGES;
        int iteration = in.getInt(index);
        int count = in.getUnsignedShort(index + 4);
        if (count == 0 || count > Frame.Pages.MAX_PAGES) {
            throw malformed(type, "page count " + count + " outside [1, " + Frame.Pages.MAX_PAGES + "]");
        }
        int meta = Frame.Pages.metaBytes(count);
        if (meta + Frame.CompressedPages.MIN_BLOCK_BYTES > length) {
            throw malformed(type, count + " entries, a codec and a block run past the frame");
        }
        int pageBytes = (int) (pagesLength(in, index + Frame.Pages.PREFIX_BYTES, count) - meta);
        if (pageBytes == 0) {
            throw malformed(type, "no page with bytes to compress");
        }
        int code = in.getUnsignedByte(index + meta);
        PageCodec codec = PageCodec.ofCode(code);
        if (codec == null) {
            throw malformed(type, "unknown codec " + code);
        }
        PageCodec.Decompressor decompressor = decompressors.get(codec);
        if (decompressor == null) {
            try {
                decompressor = codec.decompressor();
            } catch (LinkageError | RuntimeException e) {
                throw new ProtocolException(ErrorCode.INTERNAL, codec.label() + " decompression does not work here: " + e);
            }
            decompressors.put(codec, decompressor);
        }
        int blockBytes = length - meta - 1;
        ByteBuf block = in.slice(index + meta + 1, blockBytes);
        // The codecs read direct memory in one piece: a block that came in several reads is gathered first.
        ByteBuf gathered = block.nioBufferCount() == 1 && block.isDirect() ? null : in.alloc().directBuffer(blockBytes);
        ByteBuf pages = in.alloc().directBuffer(pageBytes, pageBytes);
        try {
            if (gathered != null) {
                gathered.writeBytes(block);
                block = gathered;
            }
            ByteBuffer src = block.nioBuffer();
            decompressor.decompress(src, src.position(), blockBytes, pages.nioBuffer(0, pageBytes), pageBytes);
            pages.writerIndex(pageBytes);
            ByteBuf content = in.alloc().compositeDirectBuffer(2).addComponent(true, in.retainedSlice(index, meta))
                    .addComponent(true, pages);
            pages = null;
            return Frame.Pages.decompressed(iteration, count, content, FrameHeader.BYTES + length);
        } finally {
            if (pages != null) {
                pages.release();
            }
            if (gathered != null) {
                gathered.release();
            }
        }
    }

    /** A frame being placed that will never be finished: its meta is released. */
    private void dropPlacing() {
        if (placing != null) {
            placing.meta.release();
            placing = null;
        }
    }

    /**
     * Reads one whole frame, header and payload, with every check a channel's decoder makes except the
     * sequence, which only a channel can know: for tools that read frames outside a channel (a
     * capture's inspector checks the sequence against its own count). Fails as {@code truncated} when
     * {@code frame} holds less than the header says. A {@link Frame.Pages} or {@link Frame.DeviceData}
     * returned holds a slice of {@code frame}: release it.
     */
    public static Frame read(ByteBuf frame) throws ProtocolException {
        FrameDecoder decoder = new FrameDecoder();
        if (frame.readableBytes() >= FrameHeader.BYTES) {
            decoder.expectedSequence = frame.getInt(frame.readerIndex() + 8);
        }
        Frame decoded;
        try {
            decoded = decoder.next(frame);
        } finally {
            decoder.closeDecompressors();
        }
        if (decoded == null) {
            throw new ProtocolException(ErrorCode.TRUNCATED, "the frame ends after " + frame.readableBytes() + " bytes"
                    + (frame.readableBytes() >= FrameHeader.BYTES ? ", its header says " + (FrameHeader.BYTES + frame.getUnsignedInt(
                    frame.readerIndex())) : ""));
        }
        return decoded;
    }

    private Frame next(ByteBuf in) throws ProtocolException {
        if (in.readableBytes() < FrameHeader.BYTES) {
            return null;
        }
        int start = in.readerIndex();
        long length = in.getUnsignedInt(start);
        int code = in.getUnsignedByte(start + 4);
        FrameType type = FrameType.of(code);
        if (type == null) {
            throw new ProtocolException(ErrorCode.UNKNOWN_TYPE, String.format("unknown frame type 0x%02x", code));
        }
        if (!allowed.contains(type)) {
            throw new ProtocolException(ErrorCode.OUT_OF_ORDER, type + " frame where only " + (allowed.isEmpty() ? "nothing"
                    : allowed.toString()) + " may come");
        }
        if (length > type.maxPayload() || length > maxPayload) {
            throw new ProtocolException(ErrorCode.OVERSIZE, type + " frame of " + length + " bytes exceeds its limit of "
                    + Math.min(type.maxPayload(), maxPayload));
        }
        if (length < type.minPayload()) {
            throw new ProtocolException(ErrorCode.MALFORMED, type + " frame of " + length + " bytes is shorter than "
                    + type.minPayload());
        }
        if (in.getUnsignedByte(start + 5) != 0 || in.getUnsignedShort(start + 6) != 0) {
            throw new ProtocolException(ErrorCode.MALFORMED, type + " frame has flags or reserved bits set");
        }
        int sequence = in.getInt(start + 8);
        if (sequence != expectedSequence) {
            throw new ProtocolException(ErrorCode.OUT_OF_SEQUENCE, type + " frame has sequence "
                    + Integer.toUnsignedString(sequence) + ", expected " + Integer.toUnsignedString(expectedSequence));
        }
        int total = FrameHeader.BYTES + (int) length;
        if (type == FrameType.PAGES && placement != null) {
            if (in.readableBytes() < FrameHeader.BYTES + Frame.Pages.PREFIX_BYTES) {
                return null;
            }
            int meta = pagesMeta(in, start + FrameHeader.BYTES, (int) length);
            if (in.readableBytes() < FrameHeader.BYTES + meta) {
                return null;
            }
            if (startPlacing(in, start, (int) length, meta)) {
                return null;
            }
        }
        if (in.readableBytes() < total) {
            return null;
        }
        int declared = in.getInt(start + FrameHeader.CRC_OFFSET);
        int checked = type == FrameType.PAGES ? pagesMeta(in, start + FrameHeader.BYTES, (int) length) : (int) length;
        int actual = FrameHeader.crc(in, start, in, start + FrameHeader.BYTES, checked);
        if (declared != actual) {
            throw new ProtocolException(ErrorCode.CHECKSUM, String.format("%s frame %d: CRC32C %08x, computed %08x",
                    type, sequence, declared, actual));
        }
        Frame frame = type == FrameType.COMPRESSED_PAGES ? decompress(in, start + FrameHeader.BYTES, (int) length)
                : parse(type, in, start + FrameHeader.BYTES, (int) length);
        expectedSequence++;
        if (type == FrameType.CHANNEL_END) {
            // A data channel's last frame: from here its peer may only keep it alive or abort. Said here, not
            // only in the session rules, because a PAGES frame's bytes are placed before those rules see it,
            // and memory the destination checked as complete (F11) must not change after.
            allowed.retainAll(EnumSet.of(FrameType.KEEPALIVE, FrameType.KEEPALIVE_ACK, FrameType.ABORT));
        }
        in.readerIndex(start + total);
        return frame;
    }

    /**
     * A PAGES frame whose meta is in: checks the meta (its CRC, its entries against the frame's length)
     * and, if every page it carries has a place, takes the header and meta and starts reading the page
     * bytes into place. Returns false, taking nothing, when some page has none: the frame is then read
     * whole.
     */
    private boolean startPlacing(ByteBuf in, int start, int length, int meta) throws ProtocolException {
        int index = start + FrameHeader.BYTES;
        int declared = in.getInt(start + FrameHeader.CRC_OFFSET);
        int actual = FrameHeader.crc(in, start, in, index, meta);
        if (declared != actual) {
            throw new ProtocolException(ErrorCode.CHECKSUM, String.format("PAGES frame %d: CRC32C %08x, computed %08x",
                    in.getInt(start + 8), declared, actual));
        }
        int count = in.getUnsignedShort(index + 4);
        long expected = pagesLength(in, index + Frame.Pages.PREFIX_BYTES, count);
        if (expected != length) {
            throw malformed(FrameType.PAGES, count + " entries need " + expected + " bytes, the frame has " + length);
        }
        Placing next = Placing.of(placement, in, index, count);
        if (next == null) {
            return false;
        }
        next.meta = in.retainedSlice(index, meta);
        next.iteration = in.getInt(index);
        in.readerIndex(index + meta);
        expectedSequence++;
        placing = next;
        return true;
    }

    /** Every page of the frame being placed is in: each checked against its CRC, the frame handed on. */
    private Frame.Pages finishPlacing() {
        Placing done = placing;
        placing = null;
        long torn = done.check();
        return Frame.Pages.placed(done.iteration, done.count, done.meta, torn);
    }

    /**
     * The page bytes of one PAGES frame being read into place: its data pages in entry order, grouped in
     * runs that lie together in memory, and how far the reads have come.
     */
    private static final class Placing {
        private final PagePlacement placement;
        final int count;
        int iteration;
        ByteBuf meta;
        /** Per data page, in order: its entry's position in the frame. */
        private final int[] entryOf;
        private final long[] runFirst;
        private final int[] runPages;
        private final ByteBuffer[] runView;
        /** Each run's native address, for scatter reads; made at the first one. */
        private long[] runAddress;
        private final int runs;
        private int run;
        private int offset;

        private Placing(PagePlacement placement, int count, int[] entryOf, long[] runFirst, int[] runPages, ByteBuffer[] runView,
                        int runs) {
            this.placement = placement;
            this.count = count;
            this.entryOf = entryOf;
            this.runFirst = runFirst;
            this.runPages = runPages;
            this.runView = runView;
            this.runs = runs;
        }

        /** The runs of the frame's data pages and their places, or null if some page has none. */
        static Placing of(PagePlacement placement, ByteBuf in, int index, int count) {
            int[] entryOf = new int[count];
            long[] first = new long[count];
            int[] pages = new int[count];
            int data = 0;
            int runs = 0;
            for (int i = 0; i < count; i++) {
                long entry = in.getLong(index + Frame.Pages.PREFIX_BYTES + Frame.Pages.ENTRY_BYTES * i);
                if ((entry & Frame.Pages.ZERO_FLAG) != 0) {
                    continue;
                }
                entryOf[data++] = i;
                if (runs > 0 && entry == first[runs - 1] + pages[runs - 1]) {
                    pages[runs - 1]++;
                } else {
                    first[runs] = entry;
                    pages[runs] = 1;
                    runs++;
                }
            }
            // A run that does not lie in one piece goes page by page.
            java.util.List<Long> splitFirst = new java.util.ArrayList<>();
            java.util.List<Integer> splitPages = new java.util.ArrayList<>();
            java.util.List<ByteBuffer> views = new java.util.ArrayList<>();
            for (int r = 0; r < runs; r++) {
                ByteBuffer view = placement.target(first[r], pages[r]);
                if (view != null) {
                    splitFirst.add(first[r]);
                    splitPages.add(pages[r]);
                    views.add(view);
                    continue;
                }
                for (int p = 0; p < pages[r]; p++) {
                    ByteBuffer page = pages[r] == 1 ? null : placement.target(first[r] + p, 1);
                    if (page == null) {
                        return null;
                    }
                    splitFirst.add(first[r] + p);
                    splitPages.add(1);
                    views.add(page);
                }
            }
            int n = views.size();
            long[] runFirst = new long[n];
            int[] runPages = new int[n];
            for (int r = 0; r < n; r++) {
                runFirst[r] = splitFirst.get(r);
                runPages[r] = splitPages.get(r);
            }
            return new Placing(placement, count, java.util.Arrays.copyOf(entryOf, data), runFirst, runPages,
                    views.toArray(new ByteBuffer[0]), n);
        }

        boolean done() {
            return run == runs;
        }

        int runsLeft() {
            return runs - run;
        }

        /**
         * One scatter read into the rest of the frame's runs; returns what it read (0 for nothing there, -1 for
         * the end or an error). Not for runs outside native memory (a heap buffer): those are read run by run.
         */
        long scatterFrom(SocketScatterRead io, long[] addresses, int[] lengths) {
            if (runAddress == null) {
                long[] addressOf = new long[runs];
                for (int r = 0; r < runs; r++) {
                    if (!runView[r].isDirect()) {
                        return 0;
                    }
                    addressOf[r] = SocketScatterRead.address(runView[r]);
                }
                runAddress = addressOf;
            }
            int count = 0;
            for (int r = run; r < runs; r++) {
                int skip = r == run ? offset : 0;
                addresses[count] = runAddress[r] + skip;
                lengths[count] = runPages[r] * Frame.Pages.PAGE_SIZE - skip;
                count++;
            }
            long n = io.read(addresses, lengths, count);
            for (long left = n; left > 0; ) {
                int step = (int) Math.min(left, runPages[run] * Frame.Pages.PAGE_SIZE - offset);
                advance(step);
                left -= step;
            }
            return n;
        }

        /** Where the next bytes go: the rest of the current run. */
        ByteBuffer space() {
            return runView[run].duplicate().position(offset).limit(runPages[run] * Frame.Pages.PAGE_SIZE);
        }

        /** {@code n} more bytes are in place. */
        void advance(int n) {
            offset += n;
            if (offset == runPages[run] * Frame.Pages.PAGE_SIZE) {
                run++;
                offset = 0;
            }
        }

        /** Copies page bytes that arrived in a receive buffer into place, as many as the frame still needs. */
        void copyFrom(ByteBuf in) {
            while (!done() && in.isReadable()) {
                ByteBuffer space = space();
                int n = Math.min(space.remaining(), in.readableBytes());
                in.readBytes(space.limit(space.position() + n));
                advance(n);
            }
        }

        /**
         * Checks every page where it landed against its entry's CRC, and tells the placement which
         * pages were written; returns the torn pages as a mask of entry positions.
         */
        long check() {
            java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
            long torn = 0;
            int data = 0;
            for (int r = 0; r < runs; r++) {
                for (int p = 0; p < runPages[r]; p++) {
                    int entry = entryOf[data++];
                    crc.reset();
                    crc.update(runView[r].duplicate().position(p * Frame.Pages.PAGE_SIZE).limit((p + 1) * Frame.Pages.PAGE_SIZE));
                    int expected = meta.getInt(meta.readerIndex() + Frame.Pages.PREFIX_BYTES + Frame.Pages.ENTRY_BYTES * entry + 8);
                    if ((int) crc.getValue() != expected) {
                        torn |= 1L << entry;
                    }
                }
                placement.placed(runFirst[r], runPages[r]);
            }
            return torn;
        }
    }

    private static Frame parse(FrameType type, ByteBuf in, int index, int length) throws ProtocolException {
        ByteBuf p = in.slice(index, length);
        Frame frame = switch (type) {
            case HELLO -> new Frame.Hello(p.readLong(), p.readUnsignedShort(), p.readUnsignedShort(), p.readUnsignedByte(),
                    p.readUnsignedByte(), new SessionId(p.readLong(), p.readLong()), bytes(p, Frame.NONCE_BYTES));
            case CHALLENGE -> new Frame.Challenge(p.readUnsignedShort(), bytes(p, Frame.NONCE_BYTES), bytes(p, Frame.PROOF_BYTES));
            case AUTH -> new Frame.Auth(bytes(p, Frame.PROOF_BYTES));
            case ACCEPT -> new Frame.Accept(p.readInt(), p.readInt());
            case REFUSE -> {
                ErrorCode code = ErrorCode.of(p.readUnsignedShort());
                yield new Frame.Refuse(code, message(type, p));
            }
            case ABORT -> {
                ErrorCode code = ErrorCode.of(p.readUnsignedShort());
                yield new Frame.Abort(code, message(type, p));
            }
            case VM_DESCRIPTION -> {
                long memory = p.readLong();
                int pageSize = p.readInt();
                int channels = p.readUnsignedShort();
                long size = p.readUnsignedInt();
                if (memory < 0 || size != p.readableBytes()) {
                    throw malformed(type, "memory size or description length does not match the frame");
                }
                if (channels < 1 || channels > Frame.VmDescription.MAX_DATA_CHANNELS) {
                    throw malformed(type, "dataChannels " + channels + " outside [1, " + Frame.VmDescription.MAX_DATA_CHANNELS + "]");
                }
                yield new Frame.VmDescription(memory, pageSize, channels, bytes(p, (int) size));
            }
            case VM_ACCEPTED -> new Frame.VmAccepted();
            case DEVICE_DATA -> {
                int device = p.readUnsignedShort();
                long offset = p.readLong();
                if (offset < 0) {
                    throw malformed(type, "negative offset");
                }
                yield new Frame.DeviceData(device, offset, in.retainedSlice(index + 10, length - 10));
            }
            case DEVICE_END -> new Frame.DeviceEnd(p.readUnsignedShort(), nonNegative(type, p.readLong()));
            case PHASE -> new Frame.Phase(p.readUnsignedByte(), p.readInt());
            case ITERATION_END -> new Frame.IterationEnd(p.readInt(), nonNegative(type, p.readLong()), nonNegative(type, p.readLong()));
            case PREPARE -> {
                int verify = p.readUnsignedByte();
                if (verify > 1) {
                    throw malformed(type, "verify flag " + verify);
                }
                yield new Frame.Prepare(verify == 1);
            }
            case PREPARED -> new Frame.Prepared(digest(type, p), nonNegative(type, p.readLong()), longs(type, p));
            case COMMIT -> new Frame.Commit();
            case CONFIRM -> new Frame.Confirm(nonNegative(type, p.readLong()), longs(type, p));
            case KEEPALIVE -> new Frame.Keepalive(p.readLong());
            case KEEPALIVE_ACK -> new Frame.KeepaliveAck(p.readLong());
            case ITERATION_DONE -> {
                int iteration = p.readInt();
                long verifyMicros = nonNegative(type, p.readLong());
                int count = count(type, p, 16);
                List<Frame.IterationDone.DeviceLoad> loads = new java.util.ArrayList<>(count);
                for (int i = 0; i < count; i++) {
                    loads.add(new Frame.IterationDone.DeviceLoad(nonNegative(type, p.readLong()), nonNegative(type, p.readLong())));
                }
                yield new Frame.IterationDone(iteration, verifyMicros, loads);
            }
            case DEVICE_INITIAL -> new Frame.DeviceInitial(p.readUnsignedShort(), p.readUnsignedInt(), nonNegative(type, p.readLong()));
            case SWITCHOVER_ACK -> new Frame.SwitchoverAck(p.readUnsignedInt());
            case VM_REFUSED -> {
                ErrorCode code = ErrorCode.of(p.readUnsignedShort());
                yield new Frame.VmRefused(code, string(type, p), string(type, p), string(type, p));
            }
            case PAGES -> pages(in, index, length);
            case DATA_END -> new Frame.DataEnd(p.readInt(), nonNegative(type, p.readLong()));
            case ZERO_PAGES -> {
                int iteration = p.readInt();
                long first = nonNegative(type, p.readLong());
                long count = nonNegative(type, p.readLong());
                long pages = nonNegative(type, p.readLong());
                if (count == 0 || first + count < first) {
                    throw malformed(type, "an empty or overflowing range");
                }
                yield new Frame.ZeroPages(iteration, first, count, pages);
            }
            case CHANNEL_END -> new Frame.ChannelEnd(nonNegative(type, p.readLong()));
            case COMPRESSED_PAGES -> throw new IllegalStateException("COMPRESSED_PAGES is decompressed by the decoder");
        };
        if (p.isReadable() && !(frame instanceof Frame.DeviceData) && !(frame instanceof Frame.Pages)) {
            releaseIfHolder(frame);
            throw malformed(type, p.readableBytes() + " bytes left after the payload");
        }
        return frame;
    }

    /**
     * The meta of a PAGES frame of {@code length} payload bytes at {@code index} (its prefix and entries,
     * which the frame's CRC covers), once its count is checked against the frame.
     */
    private static int pagesMeta(ByteBuf in, int index, int length) throws ProtocolException {
        int count = in.getUnsignedShort(index + 4);
        if (count == 0 || count > Frame.Pages.MAX_PAGES) {
            throw malformed(FrameType.PAGES, "page count " + count + " outside [1, " + Frame.Pages.MAX_PAGES + "]");
        }
        int meta = Frame.Pages.metaBytes(count);
        if (meta > length) {
            throw malformed(FrameType.PAGES, count + " entries run past the frame");
        }
        return meta;
    }

    /**
     * The bytes the entries of a frame of {@code count} pages need: the meta and 4096 for every page not
     * flagged zero. A zero page's CRC must be 0.
     */
    static long pagesLength(ByteBuf in, int entriesIndex, int count) throws ProtocolException {
        long expected = Frame.Pages.metaBytes(count);
        for (int i = 0; i < count; i++) {
            long entry = in.getLong(entriesIndex + Frame.Pages.ENTRY_BYTES * i);
            if ((entry & Frame.Pages.ZERO_FLAG) == 0) {
                expected += Frame.Pages.PAGE_SIZE;
            } else if (in.getInt(entriesIndex + Frame.Pages.ENTRY_BYTES * i + 8) != 0) {
                throw malformed(FrameType.PAGES, "zero page " + (entry & ~Frame.Pages.ZERO_FLAG) + " with a CRC");
            }
        }
        return expected;
    }

    /** Checks the entries' structure and hands out the payload without copying it. */
    private static Frame.Pages pages(ByteBuf in, int index, int length) throws ProtocolException {
        int iteration = in.getInt(index);
        int count = in.getUnsignedShort(index + 4);
        long expected = pagesLength(in, index + Frame.Pages.PREFIX_BYTES, count);
        if (expected != length) {
            throw malformed(FrameType.PAGES, count + " entries need " + expected + " bytes, the frame has " + length);
        }
        return new Frame.Pages(iteration, count, in.retainedSlice(index, length));
    }

    private static String message(FrameType type, ByteBuf p) throws ProtocolException {
        int length = p.readUnsignedShort();
        if (length > Frame.MAX_MESSAGE_BYTES || length != p.readableBytes()) {
            throw malformed(type, "message length " + length + " does not match the frame");
        }
        return p.readCharSequence(length, StandardCharsets.UTF_8).toString();
    }

    /** A count of {@code size}-byte entries that must fit what is left of the payload exactly. */
    private static int count(FrameType type, ByteBuf p, int size) throws ProtocolException {
        int count = p.readUnsignedShort();
        if (count > Frame.MAX_DEVICES || (long) count * size != p.readableBytes()) {
            throw malformed(type, count + " entries do not match the frame");
        }
        return count;
    }

    private static List<Long> longs(FrameType type, ByteBuf p) throws ProtocolException {
        int count = count(type, p, 8);
        List<Long> values = new java.util.ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            values.add(nonNegative(type, p.readLong()));
        }
        return values;
    }

    /** {@code length:u16} and that many UTF-8 bytes, at most {@link Frame#MAX_MESSAGE_BYTES}. */
    private static String string(FrameType type, ByteBuf p) throws ProtocolException {
        if (p.readableBytes() < 2) {
            throw malformed(type, "a string runs past the frame");
        }
        int length = p.readUnsignedShort();
        if (length > Frame.MAX_MESSAGE_BYTES || length > p.readableBytes()) {
            throw malformed(type, "a string of " + length + " bytes does not fit the frame");
        }
        return p.readCharSequence(length, StandardCharsets.UTF_8).toString();
    }

    private static byte[] digest(FrameType type, ByteBuf p) throws ProtocolException {
        int length = p.readUnsignedByte();
        if (length != 0 && length != Frame.DIGEST_BYTES) {
            throw malformed(type, "digest of " + length + " bytes; 0 or " + Frame.DIGEST_BYTES + " expected");
        }
        if (p.readableBytes() < length) {
            throw malformed(type, "digest runs past the frame");
        }
        return bytes(p, length);
    }

    private static long nonNegative(FrameType type, long value) throws ProtocolException {
        if (value < 0) {
            throw malformed(type, "negative count " + value);
        }
        return value;
    }

    private static byte[] bytes(ByteBuf p, int n) {
        byte[] out = new byte[n];
        p.readBytes(out);
        return out;
    }

    private static ProtocolException malformed(FrameType type, String what) {
        return new ProtocolException(ErrorCode.MALFORMED, type + " frame: " + what);
    }

    private static void releaseIfHolder(Frame frame) {
        if (frame instanceof io.netty.util.ReferenceCounted counted) {
            counted.release();
        }
    }
}
