package dev.ferry.protocol.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PhaseCode;
import dev.ferry.protocol.SessionId;
import io.netty.channel.ChannelFuture;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/**
 * A side that ends a session with ABORT ({@link FrameChannel#abortNow}) over real TCP: the peer reads
 * why, whatever it still had in flight, and the aborting side's channel ends in a bounded time.
 */
class AbortTest {
    private final TestAcceptor acceptor = new TestAcceptor();
    @AutoClose
    private final Loopback loopback = Loopback.started(acceptor, "a");

    /** A described session: the source's control channel, and the destination's session. */
    private TestAcceptor.Session described(FrameChannel control) throws Exception {
        control.send(new Frame.VmDescription(1 << 20, 4096, 1, new byte[0])).sync();
        await().pollInterval(Duration.ofMillis(5)).atMost(Duration.ofSeconds(10)).until(() -> acceptor.sessions.get(control.session()).memory != null);
        return acceptor.sessions.get(control.session());
    }

    /**
     * The destination aborts while bytes the source sent are still unread in its socket. Closing at once
     * would reset the connection, and a reset can make the source lose the ABORT it was about to read:
     * before abortNow lingered, migrations failed now and then as connection_lost instead of with the
     * destination's reason. Twenty rounds, since a lost ABORT was a race.
     */
    @Test
    void theSourceReadsTheAbortThoughItsOwnBytesWereLeftUnread() throws Exception {
        for (int round = 0; round < 20; round++) {
            FrameRecorder recorder = new FrameRecorder();
            FrameChannel control = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, recorder);
            TestAcceptor.Session session = described(control);
            session.control.pauseReading();
            ChannelFuture last = null;
            for (int i = 0; i < 1_000; i++) {
                last = control.send(new Frame.Keepalive(i));
            }
            last.sync();

            session.control.abortNow(ErrorCode.DEVICE_LOAD_FAILED, "device nic0 could not load its data, round " + round);

            Frame.Abort abort = recorder.abort();
            assertThat(abort).as("round %d: the destination's ABORT", round).isNotNull();
            assertThat(abort.code()).isEqualTo(ErrorCode.DEVICE_LOAD_FAILED);
            assertThat(abort.message()).endsWith("round " + round);
            assertThat(recorder.closed.get(30, TimeUnit.SECONDS)).as("an ABORT is an orderly end").isNull();
        }
    }

    @Test
    void whatArrivesAfterTheAbortIsDiscardedAndThePeersCloseEndsTheChannel() throws Exception {
        FrameRecorder recorder = new FrameRecorder();
        FrameChannel control = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, recorder);
        TestAcceptor.Session session = described(control);
        session.frames.clear();

        session.control.abortNow(ErrorCode.CANCELLED, "cancelled").sync();
        assertThat(recorder.abort()).isNotNull();
        // The source's frame crosses the ABORT: the destination drops it instead of handling it.
        control.send(new Frame.Phase(PhaseCode.PRECOPY.code(), 0));
        control.closeNow();

        assertThat(session.control.closeFuture().await(Loopback.TEST_TIMEOUT.toMillis())).as("closed").isTrue();
        assertThat(session.frames).isEmpty();
    }

    @Test
    void aPeerThatDoesNotCloseIsClosedAfterTheLinger() throws Exception {
        FrameRecorder recorder = new FrameRecorder();
        FrameChannel control = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, recorder);
        TestAcceptor.Session session = described(control);
        // A source that reads nothing more never sees the end of the stream, so it never closes.
        control.pauseReading();

        ChannelFuture released = session.control.abortNow(ErrorCode.CANCELLED, "cancelled");
        assertThat(released.await(Loopback.TEST_TIMEOUT.toMillis())).as("the output shut").isTrue();
        assertThat(session.control.closeFuture().await(FrameChannel.ABORT_LINGER_MILLIS + Loopback.TEST_TIMEOUT.toMillis()))
                .as("closed by the linger's bound").isTrue();

        control.resumeReading();
        assertThat(recorder.abort()).as("the ABORT was there to read all along").isNotNull();
    }
}
