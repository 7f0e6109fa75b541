package dev.ferry.protocol.net;

import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameDecoder;
import dev.ferry.protocol.ProtocolException;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;

/**
 * An open channel's pipeline end: checks each frame against the session's order ({@link FrameRules}),
 * answers keepalives and measures round trips, drops a channel whose peer went silent, turns any
 * failure into an ABORT with its code, and tells the application how the channel ended.
 */
final class SessionHandler extends ChannelDuplexHandler {
    private static final System.Logger LOG = System.getLogger(SessionHandler.class.getName());

    private final FrameChannel channel;
    private final Limits limits;
    private FrameDecoder decoder;
    /** The last time the peer was heard from, or reading resumed after a pause. */
    private long lastHeard;
    private ScheduledFuture<?> tick;

    SessionHandler(FrameChannel channel, Limits limits) {
        this.channel = channel;
        this.limits = limits;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        decoder = ctx.pipeline().get(FrameDecoder.class);
        lastHeard = System.nanoTime();
        long interval = limits.keepaliveInterval().toNanos();
        tick = ctx.executor().scheduleAtFixedRate(() -> tick(ctx), interval, interval, TimeUnit.NANOSECONDS);
    }

    /**
     * Liveness follows bytes, not frames (SPEC F12): a frame arriving slowly over a slow link keeps the
     * channel alive, and only a peer from which nothing at all arrived for the keepalive timeout is
     * dropped. While this side has paused reading (its own backpressure), the peer cannot be heard and
     * is not judged.
     */
    private void tick(ChannelHandlerContext ctx) {
        long now = System.nanoTime();
        if (!ctx.channel().config().isAutoRead()) {
            lastHeard = now;
        } else if (decoder != null) {
            lastHeard = Math.max(lastHeard, decoder.lastReadNanos());
        }
        long silent = now - lastHeard;
        if (silent > limits.keepaliveTimeout().toNanos()) {
            fail(ctx, new ProtocolException(ErrorCode.TIMEOUT, "nothing from the peer for "
                    + TimeUnit.NANOSECONDS.toMillis(silent) + " ms"));
            return;
        }
        if (ctx.channel().isActive() && !channel.aborted()) {
            ctx.writeAndFlush(new Frame.Keepalive(System.nanoTime()));
        }
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof Frame frame) || channel.aborted()) {
            // After this side's ABORT the channel only drains what the peer still sends (FrameChannel#abortNow).
            ReferenceCountUtil.release(msg);
            return;
        }
        try {
            channel.rules().inbound(frame);
        } catch (ProtocolException e) {
            ReferenceCountUtil.release(frame);
            fail(ctx, e);
            return;
        }
        if (frame instanceof Frame.Keepalive keepalive) {
            ctx.writeAndFlush(new Frame.KeepaliveAck(keepalive.token()));
            return;
        }
        if (frame instanceof Frame.KeepaliveAck ack) {
            long rtt = System.nanoTime() - ack.token();
            if (rtt >= 0 && rtt < TimeUnit.MINUTES.toNanos(1)) {
                channel.roundTrip(rtt);
            }
            return;
        }
        if (frame instanceof Frame.Abort || channel.rules().ended()) {
            channel.markOrderlyEnd();
        }
        FrameHandler handler = channel.handler();
        if (handler == null) {
            ReferenceCountUtil.release(frame);
            return;
        }
        try {
            handler.frameReceived(channel, frame);
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "frame handler failed on " + channel, e);
            fail(ctx, new ProtocolException(ErrorCode.INTERNAL, "receiver failed: " + e));
        }
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
        if (msg instanceof Frame frame) {
            channel.rules().outbound(frame);
        }
        ctx.write(msg, promise);
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        channel.writabilityChanged();
        ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (channel.orderlyEnd() && channel.closeCause() == null) {
            // The channel already ended in order (an ABORT or CHANNEL_END arrived, or this side ended
            // it): a reset that follows, as when the peer closes with bytes of ours unread, is no news.
            ctx.close();
            return;
        }
        fail(ctx, toProtocolException(cause));
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (tick != null) {
            tick.cancel(false);
        }
        channel.writabilityChanged();
        if (!channel.orderlyEnd()) {
            ProtocolException decoding = decoder == null ? null : decoder.failure();
            channel.setCloseCause(decoding != null ? decoding
                    : new ProtocolException(ErrorCode.CONNECTION_LOST, "the peer closed the connection"));
        }
        FrameHandler handler = channel.handler();
        if (handler != null) {
            handler.channelClosed(channel, channel.closeCause());
        }
        ctx.fireChannelInactive();
    }

    private void fail(ChannelHandlerContext ctx, ProtocolException cause) {
        if (channel.closeCause() == null) {
            LOG.log(System.Logger.Level.WARNING, channel + ": " + cause);
        }
        channel.setCloseCause(cause);
        // The reason goes out if the socket takes it now; the channel closes either way, without waiting
        // on a peer that stopped reading (a stalled peer is one of the reasons to be here).
        if (ctx.channel().isActive() && ctx.channel().isWritable()) {
            ctx.writeAndFlush(new Frame.Abort(cause.code(), cause.getMessage()));
        }
        ctx.close();
    }

    static ProtocolException toProtocolException(Throwable cause) {
        if (cause instanceof FrameDecoder.FrameException frame) {
            return frame.protocolException();
        }
        if (cause instanceof ProtocolException protocol) {
            return protocol;
        }
        Throwable root = cause.getCause() != null && cause instanceof io.netty.handler.codec.DecoderException ? cause.getCause() : cause;
        if (root instanceof SSLException) {
            return new ProtocolException(ErrorCode.AUTH_FAILED, "TLS: " + root.getMessage());
        }
        if (root instanceof IOException) {
            return new ProtocolException(ErrorCode.CONNECTION_LOST, ProtocolException.describeBroken(root));
        }
        return new ProtocolException(ErrorCode.INTERNAL, root.toString());
    }
}
