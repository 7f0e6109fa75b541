package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.ProtocolException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** What a flow waits on, and how what ends a migration becomes the failure that says why. */
class PeerRepliesTest {
    private final PeerReplies replies = new PeerReplies("destination");

    @Test
    void awaitReturnsTheFrameAskedForAndPassesOverWhatItMayIgnore() throws Exception {
        replies.add(new Frame.IterationDone(3));
        replies.add(new Frame.Prepared(new byte[0], 12));
        Frame.Prepared prepared = replies.await(Frame.Prepared.class, f -> f instanceof Frame.IterationDone, Long.MAX_VALUE, "x");
        assertThat(prepared.loadMicros()).isEqualTo(12);
    }

    @Test
    void anotherFrameIsAProtocolError() {
        replies.add(new Frame.Confirm(1));
        assertThatThrownBy(() -> replies.await(Frame.Prepared.class, f -> false, Long.MAX_VALUE, "x"))
                .isInstanceOfSatisfying(MigrationFailure.class, f -> {
                    assertThat(f.code()).isEqualTo(MigrationFailure.PROTOCOL_ERROR);
                    assertThat(f.getMessage()).contains("the destination sent CONFIRM");
                });
    }

    @Test
    void aDeadlineEndsTheWaitWithTimeout() {
        assertThatThrownBy(() -> replies.await(Frame.Confirm.class, f -> false, System.nanoTime(), "no confirmation"))
                .isInstanceOfSatisfying(MigrationFailure.class, f -> assertThat(f.code()).isEqualTo(MigrationFailure.TIMEOUT));
    }

    @Test
    void aStopEndsAnyWaitWithItsReason() throws Exception {
        CompletableFuture<MigrationFailure> waiting = CompletableFuture.supplyAsync(() -> {
            try {
                replies.next(Long.MAX_VALUE);
                return null;
            } catch (MigrationFailure f) {
                return f;
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        replies.add(new PeerReplies.Stopped(MigrationFailure.SHUTDOWN));
        assertThat(waiting.get(5, TimeUnit.SECONDS).code()).isEqualTo(MigrationFailure.SHUTDOWN);
    }

    @Test
    void theAbortOfThePeerSaysWhy() {
        replies.add(new Frame.Abort(ErrorCode.DEVICE_LOAD_FAILED, "gpu0 could not load"));
        assertThatThrownBy(() -> replies.next(Long.MAX_VALUE)).isInstanceOfSatisfying(MigrationFailure.class, f -> {
            assertThat(f.code()).isEqualTo(MigrationFailure.DEVICE_LOAD_FAILED);
            assertThat(f.getMessage()).contains("the destination aborted: gpu0 could not load");
        });
    }

    /** A data channel the peer closed is a symptom: its reason, on the control channel, follows soon. */
    @Test
    void aDataChannelThePeerClosedWaitsForThePeersReason() throws Exception {
        PeerReplies.Closed closed = new PeerReplies.Closed(new ProtocolException(ErrorCode.CONNECTION_LOST, "reset"), false);
        CompletableFuture<MigrationFailure> explained = CompletableFuture.supplyAsync(() -> replies.explain(closed));
        replies.add(new Frame.Abort(ErrorCode.VERIFY_FAILED, "digests differ"));
        assertThat(explained.get(5, TimeUnit.SECONDS).code()).isEqualTo(MigrationFailure.VERIFY_FAILED);
    }

    /** A channel this side dropped for silence is explained at once: the peer, stalled too, may never say more. */
    @Test
    void aDataChannelDroppedHereForSilenceIsExplainedAtOnce() {
        PeerReplies.Closed closed = new PeerReplies.Closed(new ProtocolException(ErrorCode.TIMEOUT, "nothing from the peer"), false);
        long start = System.nanoTime();
        MigrationFailure failure = replies.explain(closed);
        assertThat(failure.code()).isEqualTo(MigrationFailure.TIMEOUT);
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(PeerReplies.REASON_WAIT.toMillis());
    }

    @Test
    void afterCloseWhatArrivesIsReleased() {
        replies.close();
        io.netty.buffer.ByteBuf data = io.netty.buffer.Unpooled.buffer(4).writeInt(1);
        replies.add(new Frame.DeviceData(0, 0, data));
        assertThat(data.refCnt()).isZero();
    }
}
