package dev.ferry.protocol.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PhaseCode;
import dev.ferry.protocol.PagesBuilder;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.SessionId;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The order of a session's frames (FrameRules), enforced on real channels. */
class SessionOrderTest {
    private Loopback loopback;
    private TestAcceptor acceptor;

    @BeforeEach
    void start() throws InterruptedException {
        acceptor = new TestAcceptor();
        loopback = new Loopback(Loopback.config("o"), Loopback.config("o"), acceptor);
    }

    @AfterEach
    void close() {
        loopback.close();
    }

    private void expectAbort(List<Frame> frames, String because) throws Exception {
        FrameRecorder recorder = new FrameRecorder();
        FrameChannel control = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, recorder);
        for (Frame frame : frames) {
            control.send(frame);
        }
        Frame.Abort abort = recorder.abort();
        assertThat(abort).as("ABORT from the destination").isNotNull();
        assertThat(abort.code()).isEqualTo(ErrorCode.OUT_OF_ORDER);
        assertThat(abort.message()).contains(because);
        assertThat(recorder.closed.get(30, TimeUnit.SECONDS)).as("an ABORT is an orderly end").isNull();
    }

    private static Frame.VmDescription description() {
        return new Frame.VmDescription(1 << 20, 4096, 1, new byte[0]);
    }

    @Test
    void aSessionStartsWithTheVmDescription() throws Exception {
        expectAbort(List.of(new Frame.Phase(PhaseCode.PRECOPY.code(), 0)), "starts with VM_DESCRIPTION");
    }

    @Test
    void theVmIsDescribedOnce() throws Exception {
        expectAbort(List.of(description(), description()), "already described");
    }

    @Test
    void commitComesOnlyAfterPrepared() throws Exception {
        expectAbort(List.of(description(), new Frame.Commit()), "after PREPARED");
    }

    @Test
    void nothingIsStreamedAfterPrepare() throws Exception {
        expectAbort(List.of(description(), new Frame.Prepare(false), new Frame.DeviceEnd(0, 0)), "PREPARE");
    }

    @Test
    void aDescriptionOutsideOneToSixteenDataChannelsIsMalformed() throws Exception {
        for (int channels : new int[] {0, 1000}) {
            FrameRecorder recorder = new FrameRecorder();
            FrameChannel control = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, recorder);
            control.send(new Frame.VmDescription(1 << 20, 4096, channels, new byte[0]));
            Frame.Abort abort = recorder.abort();
            assertThat(abort).as("ABORT for %d data channels", channels).isNotNull();
            assertThat(abort.code()).isEqualTo(ErrorCode.MALFORMED);
            assertThat(abort.message()).contains("dataChannels " + channels);
            assertThat(acceptor.sessions.get(control.session()).memory).as("nothing was allocated for it").isNull();
        }
    }

    @Test
    void dataChannelIterationsEndWithTheirPageCounts() throws Exception {
        FrameChannel control = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, new FrameRecorder());
        control.send(description()).sync();
        await().atMost(Duration.ofSeconds(10)).until(() -> acceptor.sessions.get(control.session()).memory != null);
        FrameRecorder recorder = new FrameRecorder();
        FrameChannel data = loopback.connect(control.session(), ChannelRole.DATA, 0, recorder);
        data.send(new PagesBuilder(data.channel().alloc(), 0).addCopy(3, ByteBuffer.allocate(4096)).build());
        data.send(new Frame.DataEnd(0, 2));
        Frame.Abort abort = recorder.abort();
        assertThat(abort.code()).isEqualTo(ErrorCode.OUT_OF_ORDER);
        assertThat(abort.message()).contains("delivered 1 pages");
    }

    @Test
    void pagesOfALaterIterationWaitForTheEndOfTheCurrentOne() throws Exception {
        FrameChannel control = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, new FrameRecorder());
        control.send(description()).sync();
        await().atMost(Duration.ofSeconds(10)).until(() -> acceptor.sessions.get(control.session()).memory != null);
        FrameRecorder recorder = new FrameRecorder();
        FrameChannel data = loopback.connect(control.session(), ChannelRole.DATA, 0, recorder);
        data.send(new PagesBuilder(data.channel().alloc(), 1).addZero(3).build());
        assertThat(recorder.abort().message()).contains("pages of iteration 1 while iteration 0 is open");
    }

    /** Sends {@code frames} on a data channel of a described 1 MiB VM (256 pages, one channel); the ABORT that answers. */
    private Frame.Abort dataAbort(Frame... frames) throws Exception {
        FrameChannel control = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, new FrameRecorder());
        control.send(description()).sync();
        await().atMost(Duration.ofSeconds(10)).until(() -> acceptor.sessions.get(control.session()).memory != null);
        FrameRecorder recorder = new FrameRecorder();
        FrameChannel data = loopback.connect(control.session(), ChannelRole.DATA, 0, recorder);
        for (Frame frame : frames) {
            data.send(frame);
        }
        return recorder.abort();
    }

    @Test
    void zeroPagesRangesAreCheckedAgainstMemoryTheRoutingAndEachOther() throws Exception {
        Frame.Abort outside = dataAbort(new Frame.ZeroPages(0, 200, 100, 100));
        assertThat(outside.code()).isEqualTo(ErrorCode.MALFORMED);
        assertThat(outside.message()).contains("outside memory of 256 pages");

        Frame.Abort miscounted = dataAbort(new Frame.ZeroPages(0, 0, 100, 99));
        assertThat(miscounted.code()).isEqualTo(ErrorCode.MALFORMED);
        assertThat(miscounted.message()).contains("hold 100 pages of data channel 0, not 99");

        Frame.Abort later = dataAbort(new Frame.ZeroPages(1, 0, 100, 100));
        assertThat(later.code()).isEqualTo(ErrorCode.OUT_OF_ORDER);

        // The same range twice would make the receiver zero memory again for 44 bytes each time.
        Frame.Abort repeated = dataAbort(new Frame.ZeroPages(0, 0, 100, 100), new Frame.ZeroPages(0, 50, 100, 100));
        assertThat(repeated.code()).isEqualTo(ErrorCode.MALFORMED);
        assertThat(repeated.message()).contains("overlap or precede the iteration's previous ones, which end at 100");
    }

    @Test
    void zeroPagesCountTowardTheIterationsPages() throws Exception {
        Frame.Abort abort = dataAbort(new Frame.ZeroPages(0, 0, 100, 100), new Frame.ZeroPages(0, 100, 50, 50),
                new Frame.DataEnd(0, 149));
        assertThat(abort.code()).isEqualTo(ErrorCode.OUT_OF_ORDER);
        assertThat(abort.message()).contains("delivered 150 pages");
    }

    @Test
    void aDroppedConnectionIsReportedAsLost() throws Exception {
        FrameRecorder recorder = new FrameRecorder();
        FrameChannel control = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, recorder);
        control.send(description()).sync();
        await().atMost(Duration.ofSeconds(10)).until(() -> acceptor.sessions.get(control.session()) != null);
        acceptor.sessions.get(control.session()).control.channel().close().sync();
        ProtocolException cause = recorder.closed.get(30, TimeUnit.SECONDS);
        assertThat(cause).isNotNull();
        assertThat(cause.code()).isEqualTo(ErrorCode.CONNECTION_LOST);
    }

    @Test
    void theSourceTakesEachIterationDoneOnceInOrderAndOnlyForIterationsItEnded() throws Exception {
        FrameRecorder recorder = new FrameRecorder();
        FrameChannel control = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, recorder);
        control.send(description());
        assertThat(recorder.frames.poll(30, TimeUnit.SECONDS)).isInstanceOf(Frame.VmAccepted.class);
        control.send(new Frame.IterationEnd(0, 10, 40_960));
        TestAcceptor.Session session = acceptor.sessions.get(control.session());
        // The destination answers only what it received.
        Frame received;
        do {
            received = session.frames.poll(30, TimeUnit.SECONDS);
        } while (received != null && !(received instanceof Frame.IterationEnd));
        assertThat(received).isEqualTo(new Frame.IterationEnd(0, 10, 40_960));

        session.control.send(new Frame.IterationDone(0));
        assertThat(recorder.frames.poll(30, TimeUnit.SECONDS)).isEqualTo(new Frame.IterationDone(0));
        session.control.send(new Frame.IterationDone(1));
        ProtocolException cause = recorder.closed.get(30, TimeUnit.SECONDS);
        assertThat(cause).as("the source ends the session").isNotNull();
        assertThat(cause.code()).isEqualTo(ErrorCode.OUT_OF_ORDER);
        assertThat(cause.getMessage()).contains("ITERATION_DONE answers each ITERATION_END once");
    }
}
