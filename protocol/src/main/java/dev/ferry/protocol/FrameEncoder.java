package dev.ferry.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufHolder;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.MessageToMessageEncoder;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * Writes frames: a header and the payload. A buffer holder's content (page runs, device data) is
 * passed on as it is, never copied; the CRC is computed over exactly the bytes that are written, except
 * for a PAGES frame, whose CRC covers its meta and whose pages carry their own (see {@link Frame.Pages}).
 */
public final class FrameEncoder extends MessageToMessageEncoder<Frame> {
    private int sequence;
    /** The payload length of the frame encoded last: {@link #write} reads it right after encoding. */
    private int lastLength;

    public FrameEncoder() {
        super(Frame.class);
    }

    /** Encodes, and tells the channel's {@link TrafficMeter}, if it has one, of the frame's bytes. */
    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) throws Exception {
        TrafficMeter meter = ctx.channel().attr(TrafficMeter.KEY).get();
        if (meter == null || !(msg instanceof Frame frame)) {
            super.write(ctx, msg, promise);
            return;
        }
        FrameType type = frame.type();
        long pages = frame instanceof Frame.Pages run ? run.count() : frame instanceof Frame.CompressedPages packed ? packed.count()
                : frame instanceof Frame.ZeroPages zero ? zero.pages() : 0;
        long zeroPages = frame instanceof Frame.Pages run ? run.zeroPages()
                : frame instanceof Frame.CompressedPages packed ? packed.zeroPages()
                : frame instanceof Frame.ZeroPages zero ? zero.pages() : 0;
        int device = frame instanceof Frame.DeviceData data ? data.device() : -1;
        lastLength = -1;
        ChannelPromise tracked = promise.unvoid();
        super.write(ctx, msg, tracked);
        if (lastLength < 0) {
            return;
        }
        int bytes = FrameHeader.BYTES + lastLength;
        meter.queued(type, bytes);
        tracked.addListener(f -> {
            if (f.isSuccess()) {
                meter.written(new TrafficMeter.Sent(type, bytes, pages, zeroPages, device));
            }
        });
    }

    @Override
    protected void encode(ChannelHandlerContext ctx, Frame frame, List<Object> out) {
        ByteBuf head = ctx.alloc().buffer(FrameHeader.BYTES + 64);
        head.writerIndex(FrameHeader.BYTES);
        frame.writeHead(head);
        ByteBuf content = frame instanceof ByteBufHolder holder ? holder.content() : null;
        int headPayload = head.readableBytes() - FrameHeader.BYTES;
        int contentLength = content == null ? 0 : content.readableBytes();
        int length = headPayload + contentLength;
        if (length > frame.type().maxPayload() || length < frame.type().minPayload()) {
            head.release();
            throw new IllegalArgumentException(frame.type() + " payload of " + length + " bytes is outside ["
                    + frame.type().minPayload() + ", " + frame.type().maxPayload() + "]");
        }
        lastLength = length;
        head.setInt(0, length);
        head.setByte(4, frame.type().code());
        head.setByte(5, 0);
        head.setShort(6, 0);
        head.setInt(8, sequence++);

        CRC32C crc = new CRC32C();
        FrameHeader.update(crc, head, 0, FrameHeader.CRC_OFFSET);
        FrameHeader.update(crc, head, FrameHeader.BYTES, headPayload);
        // A PAGES frame's CRC covers its meta; each page's bytes have their own CRC in its entry.
        int checked = frame instanceof Frame.Pages pages ? Frame.Pages.metaBytes(pages.count()) : contentLength;
        if (checked > 0) {
            FrameHeader.update(crc, content, content.readerIndex(), checked);
        }
        head.setInt(FrameHeader.CRC_OFFSET, (int) crc.getValue());
        out.add(head);
        if (content != null && contentLength > 0) {
            out.add(content.retainedDuplicate());
        }
    }
}
