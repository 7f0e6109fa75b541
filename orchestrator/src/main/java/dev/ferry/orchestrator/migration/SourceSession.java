package dev.ferry.orchestrator.migration;

import dev.ferry.orchestrator.config.Endpoint;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.TrafficMeter;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.FrameHandler;
import dev.ferry.protocol.net.ProtocolClient;
import io.netty.channel.ChannelFuture;
import io.netty.util.ReferenceCountUtil;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * The source's side of one session: its control channel and data channels to the destination, all
 * counted by one meter (which paces them under the migration's rate limit, F13). Frames the
 * destination sends go to the flow's {@link PeerReplies}; a channel that closes is queued there too.
 *
 * <p>Ending is always bounded: {@link #abort} ends every channel at once without waiting for a peer
 * that stopped reading, and returns once none of them sends any more (pages sent without a copy are
 * views of the VM's memory: once a channel's output is shut, nothing of it reads them any more). The
 * control channel lingers a little after its ABORT so that the destination reads it ({@link
 * FrameChannel#abortNow}). A connect still under way
 * when the session ends is closed as soon as it completes.
 */
final class SourceSession {
    /** Opens one authenticated channel of the session: the protocol's client, or a test's in-memory channels. */
    @FunctionalInterface
    interface Connector {
        CompletableFuture<FrameChannel> connect(ChannelRole role, int index, FrameHandler handler);

        static Connector of(ProtocolClient client, Endpoint destination, SessionId session) {
            return (role, index, handler) -> client.connect(destination.resolve(), session, role, index, handler);
        }
    }

    /** How long closing waits for the channels; closing does not depend on the peer, so this is generous. */
    private static final long CLOSE_WAIT_MILLIS = 5_000;

    private final Connector connector;
    private final String destination;
    private final TrafficMeter meter;
    private final PeerReplies replies;
    private final List<CompletableFuture<FrameChannel>> connecting = new ArrayList<>();
    private final List<FrameChannel> open = new ArrayList<>();
    private volatile java.util.function.Consumer<FrameChannel> opened = channel -> {
    };
    private volatile FrameChannel control;
    private volatile List<FrameChannel> data = List.of();
    /** Every data channel carried CHANNEL_END: the destination may close them from here on. */
    private volatile boolean dataComplete;
    private boolean ended;

    /** @param destination where the channels go, for messages */
    SourceSession(Connector connector, String destination, TrafficMeter meter, PeerReplies replies) {
        this.connector = connector;
        this.destination = destination;
        this.meter = meter;
        this.replies = replies;
    }

    FrameChannel control() {
        return control;
    }

    /** Hears of each channel as it opens, before anything is sent on it (a capture taps it). */
    void onOpen(java.util.function.Consumer<FrameChannel> listener) {
        opened = listener;
    }

    /** The data channels, in index order; fixed once {@link #openData} returned. */
    List<FrameChannel> data() {
        return data;
    }

    /** Opens the control channel: every frame the destination sends on it goes to the replies. */
    void openControl() throws MigrationFailure, InterruptedException {
        control = connect(ChannelRole.CONTROL, 0, new FrameHandler() {
            @Override
            public void frameReceived(FrameChannel channel, Frame frame) {
                // Only small frames come back on the control channel (its rules admit no buffers).
                replies.add(frame);
            }

            @Override
            public void channelClosed(FrameChannel channel, ProtocolException cause) {
                replies.add(new PeerReplies.Closed(cause, true));
            }
        });
    }

    /**
     * Opens {@code count} data channels, all at once (each costs a connect and two round trips of
     * handshake, so one after another they would add up in the setup); the destination sends nothing on
     * them but keepalives and ABORT.
     */
    void openData(int count) throws MigrationFailure, InterruptedException {
        List<CompletableFuture<FrameChannel>> pending = new ArrayList<>(count);
        for (int c = 0; c < count; c++) {
            pending.add(start(ChannelRole.DATA, c, new FrameHandler() {
                @Override
                public void frameReceived(FrameChannel channel, Frame frame) {
                    if (frame instanceof Frame.Abort) {
                        replies.add(frame);
                    } else {
                        ReferenceCountUtil.release(frame);
                    }
                }

                @Override
                public void channelClosed(FrameChannel channel, ProtocolException cause) {
                    if (cause != null && !dataComplete) {
                        replies.add(new PeerReplies.Closed(cause, false));
                    }
                }
            }));
        }
        List<FrameChannel> channels = new ArrayList<>(count);
        for (CompletableFuture<FrameChannel> channel : pending) {
            // One that fails ends the session; those still connecting are closed by it (endAll).
            channels.add(finish(channel));
        }
        data = List.copyOf(channels);
    }

    /** Every data channel carried its CHANNEL_END: closing them is the destination's right now. */
    void dataComplete() {
        dataComplete = true;
    }

    /** Sends on the control channel without waiting for writability (control frames are small). */
    ChannelFuture send(Frame frame) {
        return control.send(frame);
    }

    /**
     * Ends the session at once: ABORT with the reason where the socket takes it, every channel ended
     * without waiting for what is queued; returns when none of them sends any more.
     */
    void abort(ErrorCode code, String message) {
        for (FrameChannel channel : endAll()) {
            ChannelFuture ended = channel == control ? channel.abortNow(code, message) : channel.closeNow();
            ended.awaitUninterruptibly(CLOSE_WAIT_MILLIS, TimeUnit.MILLISECONDS);
        }
    }

    /** Ends a session that completed: what was sent is flushed, then every channel closes. */
    void close() {
        for (FrameChannel channel : endAll()) {
            if (!channel.close().awaitUninterruptibly(CLOSE_WAIT_MILLIS, TimeUnit.MILLISECONDS)) {
                channel.closeNow().awaitUninterruptibly(CLOSE_WAIT_MILLIS, TimeUnit.MILLISECONDS);
            }
        }
    }

    private List<FrameChannel> endAll() {
        synchronized (this) {
            ended = true;
            connecting.forEach(pending -> pending.thenAccept(FrameChannel::closeNow));
            return List.copyOf(open);
        }
    }

    private FrameChannel connect(ChannelRole role, int index, FrameHandler handler) throws MigrationFailure, InterruptedException {
        return finish(start(role, index, handler));
    }

    /** Starts a connect that {@link #endAll} closes if the session ends before it completes. */
    private CompletableFuture<FrameChannel> start(ChannelRole role, int index, FrameHandler handler) throws MigrationFailure {
        CompletableFuture<FrameChannel> pending = connector.connect(role, index, handler);
        synchronized (this) {
            if (ended) {
                pending.thenAccept(FrameChannel::closeNow);
                throw new MigrationFailure(MigrationFailure.CANCELLED, "stopped while connecting");
            }
            connecting.add(pending);
        }
        return pending;
    }

    /** Waits for a connect {@link #start}ed, and takes the channel into the session. */
    private FrameChannel finish(CompletableFuture<FrameChannel> pending) throws MigrationFailure, InterruptedException {
        FrameChannel channel;
        try {
            channel = pending.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof ProtocolException p) {
                String code = p.code() == ErrorCode.CONNECTION_LOST ? MigrationFailure.CONNECTION_FAILED : MigrationFailure.codeOf(p.code());
                throw new MigrationFailure(code, "connecting to " + destination + ": " + p.getMessage());
            }
            throw new MigrationFailure(MigrationFailure.CONNECTION_FAILED, "connecting to " + destination + ": "
                    + ProtocolException.describeBroken(e.getCause()));
        }
        synchronized (this) {
            connecting.remove(pending);
            if (ended) {
                channel.closeNow();
                throw new MigrationFailure(MigrationFailure.CANCELLED, "stopped while connecting");
            }
            channel.setTrafficMeter(meter);
            open.add(channel);
        }
        opened.accept(channel);
        return channel;
    }
}
