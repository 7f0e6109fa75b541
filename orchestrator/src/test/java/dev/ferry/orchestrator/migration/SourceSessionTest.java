package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameType;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.TrafficMeter;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.LoopbackChannels;
import io.netty.buffer.Unpooled;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The source's channels of one session, over channels connected over loopback TCP: every frame is metered,
 * ending is bounded whatever the peer does, a data channel the destination closes after the stream is
 * complete is no failure, and a connect under way when the session ends is closed when it completes.
 */
class SourceSessionTest {
    private final LoopbackChannels local = new LoopbackChannels();
    private final PeerReplies replies = new PeerReplies("destination");
    private final List<FrameChannel> destinations = new ArrayList<>();
    private final AtomicLong queued = new AtomicLong();
    private final AtomicLong written = new AtomicLong();

    private final TrafficMeter meter = new TrafficMeter() {
        @Override
        public void queued(FrameType type, int bytes) {
            queued.addAndGet(bytes);
        }

        @Override
        public void written(Sent sent) {
            written.addAndGet(sent.bytes());
        }
    };

    private SourceSession session(SourceSession.Connector connector) {
        return new SourceSession(connector, "loopback", meter, replies);
    }

    private final SourceSession.Connector loopback = (role, index, handler) -> {
        try {
            LoopbackChannels.Pair pair = local.open(role, index, handler, null);
            destinations.add(pair.destination());
            return CompletableFuture.completedFuture(pair.source());
        } catch (Exception e) {
            return CompletableFuture.failedFuture(e);
        }
    };

    @AfterEach
    void close() {
        local.close();
        replies.close();
    }

    @Test
    void everyFrameIsMeteredAsQueuedAndAsWritten() throws Exception {
        SourceSession session = session(loopback);
        session.openControl();
        session.send(new Frame.VmDescription(4096, 4096, 1, new byte[] {'{', '}'})).sync();
        await().atMost(Duration.ofSeconds(5)).until(() -> written.get() == queued.get() && queued.get() == 16 + 18 + 2);
        session.close();
    }

    /** F12: ending does not wait on a peer that stopped reading; a sender blocked on it is released. */
    @Test
    void abortClosesEveryChannelAtOnceEvenWhenThePeerStoppedReading() throws Exception {
        SourceSession session = session(loopback);
        session.openControl();
        session.openData(2);
        session.send(new Frame.VmDescription(1L << 30, 4096, 2, new byte[] {'{', '}'}));
        destinations.forEach(FrameChannel::pauseReading);
        FrameChannel data = session.data().get(1);
        CompletableFuture<Throwable> blocked = CompletableFuture.supplyAsync(() -> {
            try {
                while (true) {
                    data.sendWhenWritable(new Frame.DeviceData(0, 0, Unpooled.wrappedBuffer(new byte[64 << 10])));
                }
            } catch (Exception e) {
                return e;
            }
        });
        await().atMost(Duration.ofSeconds(10)).until(() -> !data.isWritable());
        long start = System.nanoTime();
        session.abort(ErrorCode.CANCELLED, "cancelled");
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(1_000);
        session.data().forEach(channel -> assertThat(channel.isOpen()).isFalse());
        assertThat(blocked.get(5, TimeUnit.SECONDS)).isInstanceOf(ProtocolException.class);
        // The control channel sent ABORT and shut its output; it reads on so that the destination can read the
        // ABORT (FrameChannel#abortNow), and a destination that reads nothing leaves it closing at the bound.
        await().atMost(Duration.ofMillis(FrameChannel.ABORT_LINGER_MILLIS + 5_000)).until(() -> !session.control().isOpen());
    }

    @Test
    void aDataChannelTheDestinationClosesIsAFailureUntilTheStreamIsComplete() throws Exception {
        SourceSession session = session(loopback);
        session.openControl();
        session.openData(2);
        destinations.get(1).closeNow().sync();
        await().atMost(Duration.ofSeconds(5)).until(() -> replies.ended() != null);

        session.dataComplete();
        destinations.get(2).closeNow().sync();
        await().atMost(Duration.ofSeconds(5)).until(() -> !session.data().get(1).isOpen());
        assertThat(replies.ended()).as("after CHANNEL_END the destination may close data channels").isNull();
        session.close();
    }

    @Test
    void aConnectUnderWayWhenTheSessionEndsIsClosedWhenItCompletes() throws Exception {
        CompletableFuture<FrameChannel> pending = new CompletableFuture<>();
        SourceSession session = session((role, index, handler) -> pending);
        Thread[] flow = new Thread[1];
        CompletableFuture<Throwable> opening = CompletableFuture.supplyAsync(() -> {
            flow[0] = Thread.currentThread();
            try {
                session.openControl();
                return null;
            } catch (Exception e) {
                return e;
            }
        });
        await().atMost(Duration.ofSeconds(5)).until(() -> flow[0] != null && flow[0].getState() == Thread.State.WAITING);
        session.abort(ErrorCode.CANCELLED, "cancelled");
        flow[0].interrupt();
        assertThat(opening.get(5, TimeUnit.SECONDS)).isInstanceOf(InterruptedException.class);
        FrameChannel late = local.open(ChannelRole.CONTROL, 0, null, null).source();
        pending.complete(late);
        await().atMost(Duration.ofSeconds(5)).until(() -> !late.isOpen());
        assertThatThrownBy(session::openControl).isInstanceOf(MigrationFailure.class);
    }

    /**
     * The data channels connect all at once, not one after another: every connect is under way before
     * any completes. They complete here in reverse order and are still the session's in index order;
     * one that fails fails the session, and one that completes after that is closed.
     */
    @Test
    void dataChannelsConnectAllAtOnceAndAFailureClosesTheRest() throws Exception {
        List<CompletableFuture<FrameChannel>> connects = java.util.Collections.synchronizedList(new ArrayList<>());
        SourceSession.Connector deferred = (role, index, handler) -> {
            CompletableFuture<FrameChannel> pending = new CompletableFuture<>();
            connects.add(pending);
            return pending;
        };
        SourceSession session = session(deferred);
        CompletableFuture<Void> opening = CompletableFuture.runAsync(() -> {
            try {
                session.openData(3);
            } catch (Exception e) {
                throw new java.util.concurrent.CompletionException(e);
            }
        });
        await().atMost(Duration.ofSeconds(5)).until(() -> connects.size() == 3);
        List<FrameChannel> opened = new ArrayList<>();
        for (int c = 2; c >= 0; c--) {
            FrameChannel channel = local.open(ChannelRole.DATA, c, null, null).source();
            opened.add(0, channel);
            connects.get(c).complete(channel);
        }
        opening.get(5, TimeUnit.SECONDS);
        assertThat(session.data()).containsExactlyElementsOf(opened);
        session.close();

        connects.clear();
        SourceSession failing = session(deferred);
        CompletableFuture<Throwable> failed = CompletableFuture.supplyAsync(() -> {
            try {
                failing.openData(2);
                return null;
            } catch (Exception e) {
                return e;
            }
        });
        await().atMost(Duration.ofSeconds(5)).until(() -> connects.size() == 2);
        connects.get(0).completeExceptionally(new ProtocolException(ErrorCode.AUTH_FAILED, "wrong token"));
        assertThat(failed.get(5, TimeUnit.SECONDS)).isInstanceOf(MigrationFailure.class).hasMessageContaining("wrong token");
        failing.abort(ErrorCode.CANCELLED, "failed");
        FrameChannel late = local.open(ChannelRole.DATA, 1, null, null).source();
        connects.get(1).complete(late);
        await().atMost(Duration.ofSeconds(5)).until(() -> !late.isOpen());
    }
}
