package dev.ferry.protocol.capture;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameHeader;
import dev.ferry.protocol.FrameType;
import dev.ferry.protocol.net.FrameChannel;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPromise;
import io.netty.channel.EventLoop;
import java.util.ArrayDeque;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Captures one channel's frames, both ways, as bytes on the wire: a handler between the socket (or
 * TLS) and the frame codec, so it sees exactly what was sent and received, header, sequence and CRC
 * included, whatever the codec above it does. It cuts the two byte streams into frames by their
 * headers alone, copies each frame into a record (a PAGES frame up to the end of its entries, unless
 * the capture takes page data) and queues it for the {@link CaptureWriter}. It never waits: a frame for
 * which the writer has no room is dropped and counted, and a GAP record says so before the next frame
 * of the same direction.
 *
 * <p>A tap may start <em>pending</em>, before anyone knows whether the session is to be captured (the
 * destination learns it from the VM description): it then keeps what it sees, up to
 * {@value #PENDING_LIMIT_BYTES} bytes, until it is {@link #attach attached} to a writer or
 * {@link #decline declined}.
 *
 * <p>Everything but {@link #attach} and {@link #decline} runs on the channel's event loop.
 */
public final class CaptureTap extends ChannelDuplexHandler {
    /** What a pending tap keeps at most. */
    static final int PENDING_LIMIT_BYTES = 1 << 20;
    /** An event loop runs a task within microseconds; one that does not in this long has stopped. */
    private static final long INSTALL_WAIT_SECONDS = 5;
    private static final String NAME = "capture";
    /** A PAGES frame's payload up to the end of its entries (its meta), at most. */
    private static final int MAX_PAGES_META = Frame.Pages.metaBytes(Frame.Pages.MAX_PAGES);
    private static final System.Logger LOG = System.getLogger(CaptureTap.class.getName());

    private final CaptureFormat.Channel channel;
    private final Channel netty;
    private final EventLoop loop;
    private final Framer sent = new Framer(CaptureFormat.Direction.SENT);
    private final Framer received = new Framer(CaptureFormat.Direction.RECEIVED);
    private final ArrayDeque<ByteBuf> pending = new ArrayDeque<>();
    private CaptureWriter writer;
    private int pendingBytes;
    private long pendingDropped;
    private long pendingDroppedBytes;
    /** Declined, failed or ended: frames pass untouched. */
    private boolean off;
    private boolean ended;
    private ByteBufAllocator alloc = ByteBufAllocator.DEFAULT;

    private CaptureTap(FrameChannel frameChannel, CaptureWriter writer) {
        this.channel = new CaptureFormat.Channel(frameChannel.role(), frameChannel.index());
        this.netty = frameChannel.channel();
        this.loop = netty.eventLoop();
        this.writer = writer;
    }

    /**
     * Installs a tap that captures into {@code writer} from now on. The tap is added on the channel's event
     * loop, and from another thread this returns once it is there: a handler added from another thread
     * would let the event loop's next read pass it by, and a frame sent after this returns passes it. On
     * the event loop the channel is in the middle of something (a channel being accepted, whose
     * handshake's last frame is about to go out): the tap joins once that is done, with the next frame.
     */
    static CaptureTap install(FrameChannel frameChannel, CaptureWriter writer) {
        CaptureTap tap = new CaptureTap(frameChannel, writer);
        writer.attached(tap);
        if (tap.loop.inEventLoop()) {
            tap.onEventLoop(() -> {
                if (!tap.join()) {
                    writer.detached(tap);
                }
            }, () -> writer.detached(tap));
            return tap;
        }
        boolean joined;
        try {
            joined = tap.loop.submit(tap::join).get(INSTALL_WAIT_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            joined = false;
        } catch (ExecutionException | TimeoutException | RejectedExecutionException e) {
            joined = false;
        }
        if (!joined) {
            tap.off = true;
            writer.detached(tap);
        }
        return tap;
    }

    /**
     * Installs a pending tap: it keeps what it sees until {@link #attach} or {@link #decline}. Installed
     * once the event loop is done with what it is doing now, so a channel being accepted starts with
     * the first frame after its handshake.
     */
    public static CaptureTap pending(FrameChannel frameChannel) {
        CaptureTap tap = new CaptureTap(frameChannel, null);
        tap.onEventLoop(tap::join, () -> tap.off = true);
        return tap;
    }

    /** Captures into {@code target} from here on, beginning with what this tap kept while pending. */
    public void attach(CaptureWriter target) {
        target.attached(this);
        onEventLoop(() -> {
            if (off || ended || writer != null) {
                target.detached(this);
                return;
            }
            writer = target;
            for (ByteBuf record : pending) {
                target.offerAnyway(record);
            }
            pending.clear();
            pendingBytes = 0;
            target.dropped(pendingDropped, pendingDroppedBytes);
        }, () -> target.detached(this));
    }

    /** The session is not captured: what was kept is let go, and the tap leaves the pipeline. */
    public void decline() {
        onEventLoop(() -> {
            off = true;
            releasePending();
            ChannelHandler self = this;
            if (netty.pipeline().context(self) != null) {
                netty.pipeline().remove(self);
            }
        }, () -> {
        });
    }

    /** Runs {@code task} on the channel's event loop, after what it is doing now; {@code rejected} if it has stopped. */
    private void onEventLoop(Runnable task, Runnable rejected) {
        try {
            loop.execute(task);
        } catch (RejectedExecutionException e) {
            rejected.run();
        }
    }

    /** On the event loop: joins the pipeline just below the frame codec, unless the channel has closed. */
    private boolean join() {
        ChannelPipeline pipeline = netty.pipeline();
        if (!netty.isActive() || pipeline.get("decoder") == null) {
            off = true;
            return false;
        }
        pipeline.addBefore("decoder", NAME, this);
        return true;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext context) {
        alloc = context.alloc();
    }

    @Override
    public void channelRead(ChannelHandlerContext context, Object msg) {
        if (!off && msg instanceof ByteBuf buf) {
            capture(received, context.alloc(), buf);
        }
        context.fireChannelRead(msg);
    }

    @Override
    public void write(ChannelHandlerContext context, Object msg, ChannelPromise promise) {
        if (!off && msg instanceof ByteBuf buf) {
            capture(sent, context.alloc(), buf);
        }
        context.write(msg, promise);
    }

    @Override
    public void channelInactive(ChannelHandlerContext context) {
        end();
        context.fireChannelInactive();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext context) {
        end();
    }

    private void capture(Framer framer, ByteBufAllocator alloc, ByteBuf buf) {
        try {
            framer.feed(alloc, buf);
        } catch (RuntimeException e) {
            // The capture must never break the channel: give up capturing it, and say so.
            LOG.log(System.Logger.Level.WARNING, "capture of the " + channel + " channel stopped: " + e);
            off = true;
            sent.abandon();
            received.abandon();
        }
    }

    /** The channel ended: a frame cut short is kept as far as it came, gaps are said; the writer stops waiting for this tap. */
    private void end() {
        if (ended) {
            return;
        }
        ended = true;
        if (!off) {
            sent.close();
            received.close();
        }
        sent.abandon();
        received.abandon();
        releasePending();
        CaptureWriter target = writer;
        if (target != null) {
            target.detached(this);
        }
    }

    private void releasePending() {
        pending.forEach(ByteBuf::release);
        pending.clear();
        pendingBytes = 0;
    }

    // ---- where records go ----------------------------------------------------------------------

    private boolean pageData() {
        return writer != null && writer.pageData();
    }

    /** Gives back room taken for a record that was never offered. */
    private void unreserve(int bytes) {
        if (writer != null) {
            writer.unreserve(bytes);
        } else {
            pendingBytes -= bytes;
        }
    }

    private boolean reserve(int bytes) {
        if (off) {
            return false;
        }
        if (writer != null) {
            return writer.reserve(bytes);
        }
        if (pendingBytes + bytes > PENDING_LIMIT_BYTES) {
            return false;
        }
        pendingBytes += bytes;
        return true;
    }

    private void offer(ByteBuf record, int reserved) {
        if (writer != null) {
            writer.offer(record, reserved);
        } else {
            pendingBytes += record.readableBytes() - reserved;
            pending.add(record);
        }
    }

    private void offerAnyway(ByteBuf record) {
        if (writer != null) {
            writer.offerAnyway(record);
        } else if (off) {
            record.release();
        } else {
            pendingBytes += record.readableBytes();
            pending.add(record);
        }
    }

    private void dropped(long wireBytes) {
        if (writer != null) {
            writer.dropped(1, wireBytes);
        } else {
            pendingDropped++;
            pendingDroppedBytes += wireBytes;
        }
    }

    /** Cuts one direction's bytes into frames by their headers, and each frame into a record. */
    private final class Framer {
        private final CaptureFormat.Direction direction;
        private final byte[] header = new byte[FrameHeader.BYTES];
        private int headerFill;
        /** Payload bytes of the current frame still to come. */
        private long payloadLeft;
        /** Of those, how many go into the record now. */
        private int keepLeft;
        /** A PAGES frame without page data: its count, in its prefix, says how many bytes of entries to keep. */
        private boolean awaitingCount;
        private ByteBuf record;
        private int reserved;
        private int flags;
        /** Not frames any more (the peer sends garbage, which the decoder refuses): nothing more is cut. */
        private boolean lost;
        private int gapSequence;
        private int gapFrames;
        private long gapBytes;

        Framer(CaptureFormat.Direction direction) {
            this.direction = direction;
        }

        void feed(ByteBufAllocator alloc, ByteBuf buf) {
            int index = buf.readerIndex();
            int end = buf.writerIndex();
            while (index < end && !lost) {
                if (headerFill < FrameHeader.BYTES) {
                    int n = Math.min(FrameHeader.BYTES - headerFill, end - index);
                    buf.getBytes(index, header, headerFill, n);
                    headerFill += n;
                    index += n;
                    if (headerFill == FrameHeader.BYTES) {
                        start(alloc);
                    }
                    continue;
                }
                int available = end - index;
                if (keepLeft > 0) {
                    int n = Math.min(keepLeft, available);
                    record.writeBytes(buf, index, n);
                    index += n;
                    keepLeft -= n;
                    payloadLeft -= n;
                    if (keepLeft == 0 && awaitingCount) {
                        awaitingCount = false;
                        int count = record.getUnsignedShort(record.writerIndex() - 2);
                        keepLeft = (int) Math.min(payloadLeft, (long) Frame.Pages.ENTRY_BYTES * Math.min(count, Frame.Pages.MAX_PAGES));
                    }
                } else {
                    int n = (int) Math.min(payloadLeft, available);
                    index += n;
                    payloadLeft -= n;
                }
                if (payloadLeft == 0) {
                    complete();
                }
            }
        }

        /** A frame's header is in: decide what of it to keep, and whether there is room. */
        private void start(ByteBufAllocator alloc) {
            long length = getUnsignedInt(header, 0);
            FrameType type = FrameType.of(header[4] & 0xff);
            int sequence = getInt(header, 8);
            if (type == null || length > FrameType.MAX_PAYLOAD) {
                // Not a frame: the receiver refuses it as soon as its header is in, and so nothing after it
                // can be cut into frames. The header is kept, cut short, for the inspector to name.
                lost = true;
                cut(alloc, header, FrameHeader.BYTES);
                return;
            }
            payloadLeft = length;
            boolean entriesOnly = type == FrameType.PAGES && !pageData();
            int keep = entriesOnly ? (int) Math.min(length, MAX_PAGES_META) : (int) length;
            int size = CaptureFormat.RECORD_HEADER_BYTES + 1 + FrameHeader.BYTES + keep;
            if (reserve(size)) {
                record = newRecord(alloc, size);
                record.writeBytes(header);
                reserved = size;
                flags = 0;
                keepLeft = entriesOnly ? (int) Math.min(length, Frame.Pages.PREFIX_BYTES) : keep;
                awaitingCount = entriesOnly && length >= Frame.Pages.PREFIX_BYTES;
            } else {
                record = null;
                keepLeft = 0;
                awaitingCount = false;
                if (gapFrames == 0) {
                    gapSequence = sequence;
                }
                gapFrames++;
                gapBytes += FrameHeader.BYTES + length;
                dropped(FrameHeader.BYTES + length);
            }
            if (payloadLeft == 0) {
                complete();
            }
        }

        private ByteBuf newRecord(ByteBufAllocator alloc, int size) {
            ByteBuf buf = alloc.directBuffer(size);
            buf.writeByte(CaptureFormat.FRAME).writeByte(channel.role().code()).writeByte(channel.index()).writeByte(direction.code())
                    .writeLong(0).writeInt(0).writeByte(0);
            return buf;
        }

        /** The current frame is all through: its record goes to the writer. */
        private void complete() {
            if (record != null) {
                if (payloadLeft > 0) {
                    flags |= CaptureFormat.CUT;
                } else if (storedPayload() < getUnsignedInt(header, 0)) {
                    flags |= CaptureFormat.PAGE_DATA_LEFT_OUT;
                }
                flushGap(record.alloc());
                seal(record, flags);
                ByteBuf done = record;
                record = null;
                offer(done, reserved);
            }
            headerFill = 0;
            payloadLeft = 0;
            keepLeft = 0;
            awaitingCount = false;
        }

        private long storedPayload() {
            return record.readableBytes() - CaptureFormat.RECORD_HEADER_BYTES - 1 - FrameHeader.BYTES;
        }

        /** A frame of which only {@code bytes} arrived. */
        private void cut(ByteBufAllocator alloc, byte[] bytes, int length) {
            int size = CaptureFormat.RECORD_HEADER_BYTES + 1 + length;
            if (!reserve(size)) {
                return;
            }
            ByteBuf cut = newRecord(alloc, size);
            cut.writeBytes(bytes, 0, length);
            flushGap(alloc);
            seal(cut, CaptureFormat.CUT);
            offer(cut, size);
        }

        private void seal(ByteBuf buf, int recordFlags) {
            buf.setLong(4, System.nanoTime());
            buf.setInt(12, buf.readableBytes() - CaptureFormat.RECORD_HEADER_BYTES);
            buf.setByte(CaptureFormat.RECORD_HEADER_BYTES, recordFlags);
        }

        /** Before the next frame captured: which frames before it were not. */
        private void flushGap(ByteBufAllocator alloc) {
            if (gapFrames == 0) {
                return;
            }
            ByteBuf gap = alloc.directBuffer(CaptureFormat.RECORD_HEADER_BYTES + CaptureFormat.GAP_BODY_BYTES);
            gap.writeByte(CaptureFormat.GAP).writeByte(channel.role().code()).writeByte(channel.index()).writeByte(direction.code())
                    .writeLong(System.nanoTime()).writeInt(CaptureFormat.GAP_BODY_BYTES)
                    .writeInt(gapSequence).writeInt(gapFrames).writeLong(gapBytes);
            gapFrames = 0;
            gapBytes = 0;
            offerAnyway(gap);
        }

        /** The channel closed: a frame under way is kept as far as it came; a gap at the end is said. */
        void close() {
            if (record != null) {
                complete();
            } else if (headerFill > 0 && headerFill < FrameHeader.BYTES && !lost) {
                cut(alloc, header, headerFill);
                headerFill = 0;
            }
            if (gapFrames > 0) {
                flushGap(alloc);
            }
        }

        /** Lets go of a record under way. */
        void abandon() {
            if (record != null) {
                record.release();
                record = null;
                unreserve(reserved);
            }
            lost = true;
        }
    }

    private static long getUnsignedInt(byte[] bytes, int at) {
        return getInt(bytes, at) & 0xffffffffL;
    }

    private static int getInt(byte[] bytes, int at) {
        return (bytes[at] & 0xff) << 24 | (bytes[at + 1] & 0xff) << 16 | (bytes[at + 2] & 0xff) << 8 | (bytes[at + 3] & 0xff);
    }
}
