package dev.ferry.protocol.net;

import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameDecoder;
import dev.ferry.protocol.PageRouting;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.TrafficMeter;
import dev.ferry.protocol.transfer.PagePlacement;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/**
 * One authenticated channel of a session, as the application sees it: send frames (waiting for
 * writability when the peer is slower), pause and resume reading, measure round trips, abort.
 */
public final class FrameChannel {
    /** How long a channel that sent ABORT waits for the peer to close before it closes itself ({@link #abortNow}). */
    public static final long ABORT_LINGER_MILLIS = 2_000;
    /**
     * How long ABORT may wait in the outbound buffer before the channel closes without it: a peer that
     * does not take it in this time has stopped reading, and ending must not wait on it (F12).
     */
    static final long ABORT_WRITE_MILLIS = 250;

    private final Channel channel;
    private final ChannelRole role;
    private final int index;
    private final SessionId session;
    private final FrameRules rules;
    private final Object writable = new Object();
    private volatile FrameHandler handler;
    private final RoundTrips roundTrips = new RoundTrips();
    private volatile boolean orderlyEnd;
    private volatile boolean aborted;
    private volatile ProtocolException closeCause;

    FrameChannel(Channel channel, ChannelRole role, int index, SessionId session, boolean destination) {
        this.channel = channel;
        this.role = role;
        this.index = index;
        this.session = session;
        this.rules = new FrameRules(role, destination);
    }

    public ChannelRole role() {
        return role;
    }

    /** The data channel's index; 0 for the control channel. */
    public int index() {
        return index;
    }

    public SessionId session() {
        return session;
    }

    public InetSocketAddress remoteAddress() {
        return (InetSocketAddress) channel.remoteAddress();
    }

    /** The underlying Netty channel, for its allocator and event loop. */
    public Channel channel() {
        return channel;
    }

    /** Replaces the handler of received frames. */
    public void setHandler(FrameHandler handler) {
        this.handler = handler;
    }

    FrameHandler handler() {
        return handler;
    }

    FrameRules rules() {
        return rules;
    }

    /** Which pages may arrive on this data channel, or null before the session described its VM. */
    public PageRouting pageRouting() {
        return rules.routing();
    }

    /** Destination side of a data channel: which pages may arrive here. */
    public void setPageRouting(PageRouting routing) {
        if (channel.eventLoop().inEventLoop()) {
            rules.setRouting(routing);
        } else {
            channel.eventLoop().execute(() -> rules.setRouting(routing));
        }
    }

    /**
     * Destination side of a data channel: page bytes are read straight into the places
     * {@code placement} gives (no copy in user space), unless the channel has TLS.
     */
    public void setPagePlacement(PagePlacement placement) {
        Runnable install = () -> {
            ChannelHandlerContext ctx = channel.pipeline().context(FrameDecoder.class);
            if (ctx != null) {
                ((FrameDecoder) ctx.handler()).placeInto(ctx, placement);
            }
        };
        if (channel.eventLoop().inEventLoop()) {
            install.run();
        } else {
            channel.eventLoop().execute(install);
        }
    }

    /** Writes and flushes a frame; completes when it is written. */
    public ChannelFuture send(Frame frame) {
        return channel.writeAndFlush(frame);
    }

    /**
     * Waits until the channel is writable (its outbound buffer below the low watermark), then sends.
     * This is the sending side of backpressure: a sender never queues more than the high watermark.
     * The wait lasts as long as the channel is open: a peer that stopped reading is found out by its
     * silence (the keepalive timeout closes the channel), a cancel by an interrupt.
     *
     * @throws ProtocolException when the channel closed
     */
    public ChannelFuture sendWhenWritable(Frame frame) throws ProtocolException, InterruptedException {
        try {
            awaitWritable();
        } catch (InterruptedException | ProtocolException e) {
            io.netty.util.ReferenceCountUtil.release(frame);
            throw e;
        }
        return send(frame);
    }

    /** Waits until writable; interruptible. */
    public void awaitWritable() throws ProtocolException, InterruptedException {
        synchronized (writable) {
            while (channel.isActive() && !channel.isWritable()) {
                // Bounded, so a notification that raced the check is seen soon anyway.
                writable.wait(100);
            }
        }
        if (!channel.isActive()) {
            ProtocolException cause = closeCause;
            throw cause != null ? cause : new ProtocolException(ErrorCode.CONNECTION_LOST, "channel closed");
        }
    }

    void writabilityChanged() {
        synchronized (writable) {
            writable.notifyAll();
        }
    }

    public boolean isWritable() {
        return channel.isWritable();
    }

    public boolean isOpen() {
        return channel.isActive();
    }

    /** Stops reading from the socket: the peer's sends back up into TCP flow control. */
    public void pauseReading() {
        channel.config().setAutoRead(false);
    }

    public void resumeReading() {
        channel.config().setAutoRead(true);
    }

    /**
     * The round trip of this channel when neither side is busy: the smallest of the recent keepalive
     * round trips ({@link RoundTrips}), or -1 before the first.
     */
    public long rttNanos() {
        return roundTrips.quietest();
    }

    void roundTrip(long nanos) {
        roundTrips.add(nanos);
    }

    /**
     * Ends the session on this channel at once, without waiting on a peer that stopped reading: ABORT
     * is written if the socket takes it now, else the channel closes. Once ABORT is written the
     * channel shuts its output and goes on reading, discarding what arrives, until the peer closes or
     * {@link #ABORT_LINGER_MILLIS} pass. Closing at once instead would reset the connection whenever
     * bytes of the peer's were still unread here, and a reset can make the peer lose the ABORT before
     * it reads it: it would then know only that the connection broke, not why.
     *
     * <p>The returned future completes once nothing of the channel reads memory any more: its output
     * is shut (frames still queued are released) or the channel is closed; at the latest after
     * {@link #ABORT_WRITE_MILLIS}, when a peer that stopped reading leaves ABORT unwritten (F12).
     */
    public ChannelFuture abortNow(ErrorCode code, String message) {
        orderlyEnd = true;
        aborted = true;
        ChannelPromise released = channel.newPromise();
        channel.closeFuture().addListener(closed -> released.trySuccess());
        if (!channel.isActive()) {
            channel.close();
            return released;
        }
        channel.eventLoop().execute(() -> {
            if (!channel.isActive() || !channel.isWritable()) {
                channel.close();
                return;
            }
            ChannelFuture written = channel.writeAndFlush(new Frame.Abort(code, message));
            // Reading drains the peer's bytes and sees its close, even if this side had paused it.
            channel.config().setAutoRead(true);
            if (!(channel instanceof DuplexChannel duplex)) {
                channel.close();
                return;
            }
            ScheduledFuture<?> linger = channel.eventLoop().schedule(() -> channel.close(), ABORT_LINGER_MILLIS,
                    TimeUnit.MILLISECONDS);
            ScheduledFuture<?> unwritten = channel.eventLoop().schedule(() -> {
                if (!written.isDone()) {
                    channel.close();
                }
            }, ABORT_WRITE_MILLIS, TimeUnit.MILLISECONDS);
            channel.closeFuture().addListener(closed -> {
                linger.cancel(false);
                unwritten.cancel(false);
            });
            written.addListener(done -> {
                if (done.isSuccess()) {
                    duplex.shutdownOutput().addListener(shut -> released.trySuccess());
                } else {
                    channel.close();
                }
            });
        });
        return released;
    }

    /** ABORT was sent or the channel closed by {@link #abortNow}: what still arrives is discarded. */
    boolean aborted() {
        return aborted;
    }

    /** Closes at once, dropping whatever is queued; see {@link #abortNow}. */
    public ChannelFuture closeNow() {
        orderlyEnd = true;
        return channel.close();
    }

    /** Counts every frame this channel sends from now on (see {@link TrafficMeter}). */
    public void setTrafficMeter(TrafficMeter meter) {
        channel.attr(TrafficMeter.KEY).set(meter);
    }

    /** Closes after what was sent so far is flushed. */
    public ChannelFuture close() {
        orderlyEnd = true;
        return channel.writeAndFlush(io.netty.buffer.Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
    }

    public ChannelFuture closeFuture() {
        return channel.closeFuture();
    }

    void markOrderlyEnd() {
        orderlyEnd = true;
    }

    boolean orderlyEnd() {
        return orderlyEnd;
    }

    /** Why the channel closed, once it has; {@code null} for an orderly end. */
    public ProtocolException closeCause() {
        return closeCause;
    }

    void setCloseCause(ProtocolException cause) {
        if (closeCause == null) {
            closeCause = cause;
        }
    }

    @Override
    public String toString() {
        return role.name().toLowerCase(java.util.Locale.ROOT) + (role == ChannelRole.DATA ? "#" + index : "") + " channel of session "
                + session + " with " + channel.remoteAddress();
    }
}
