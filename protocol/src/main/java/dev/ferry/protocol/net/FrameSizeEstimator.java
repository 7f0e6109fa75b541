package dev.ferry.protocol.net;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameHeader;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufHolder;
import io.netty.channel.MessageSizeEstimator;

/**
 * Sizes a frame as it is handed to a channel, before it is encoded, so that a frame queued from a
 * sender's thread counts towards the channel's write buffer at once: writability then turns off as
 * soon as the high watermark is passed, and a sender never gets more than one frame past it.
 * (Netty's default sizes a message it does not know as 0 until it is encoded on the event loop.)
 */
public final class FrameSizeEstimator implements MessageSizeEstimator {
    public static final FrameSizeEstimator INSTANCE = new FrameSizeEstimator();

    private static final Handle HANDLE = message -> {
        if (message instanceof ByteBufHolder holder) {
            return FrameHeader.BYTES + holder.content().readableBytes();
        }
        if (message instanceof ByteBuf buf) {
            return buf.readableBytes();
        }
        return message instanceof Frame ? FrameHeader.BYTES + 16 : 8;
    };

    private FrameSizeEstimator() {
    }

    @Override
    public Handle newHandle() {
        return HANDLE;
    }
}
