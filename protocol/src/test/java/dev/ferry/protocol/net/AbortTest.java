package dev.ferry.protocol.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PhaseCode;
import dev.ferry.protocol.SessionId;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.WriteBufferWaterMark;
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
    void f4TheSourceReadsTheAbortThoughItsOwnBytesWereLeftUnread() throws Exception {
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
    void f12AnAbortThePeerDoesNotTakeEndsTheChannelWithoutWaitingForIt() throws Exception {
        FrameChannel control = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, new FrameRecorder());
        TestAcceptor.Session session = described(control);
        FrameChannel data = loopback.connect(control.session(), ChannelRole.DATA, 0, new FrameRecorder());
        await().atMost(Duration.ofSeconds(10)).until(() -> session.dataChannels.size() == 1);
        session.dataChannels.get(0).pauseReading();
        // A watermark far above what the sockets hold: the channel stays writable, so ABORT is queued
        // behind frames the stalled destination will never take.
        data.channel().config().setWriteBufferWaterMark(new WriteBufferWaterMark(256 << 20, 512 << 20));
        long high = data.channel().config().getWriteBufferHighWaterMark();
        byte[] chunk = new byte[64 << 10];
        for (int i = 0; i < 512; i++) {
            data.send(new Frame.DeviceData(0, (long) i * chunk.length, Unpooled.wrappedBuffer(chunk)));
        }
        await("bytes queued behind the full sockets").atMost(Duration.ofSeconds(10))
                .until(() -> high - data.channel().bytesBeforeUnwritable() >= 1 << 20);

        ChannelFuture released = data.abortNow(ErrorCode.CANCELLED, "cancelled");
        // F12: ending takes effect within a second, whatever the peer does.
        assertThat(released.await(1_000)).as("ended within a second").isTrue();
        assertThat(data.closeFuture().isDone()).as("closed without its ABORT, not lingering with it queued").isTrue();
        // The destination, reading again, finds the channel closed and lets go of what it had gathered.
        FrameChannel destination = session.dataChannels.get(0);
        destination.resumeReading();
        assertThat(destination.closeFuture().await(Loopback.TEST_TIMEOUT.toMillis())).isTrue();
    }

    @Test
    void f12APeerThatDoesNotCloseIsClosedAfterTheLinger() throws Exception {
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
