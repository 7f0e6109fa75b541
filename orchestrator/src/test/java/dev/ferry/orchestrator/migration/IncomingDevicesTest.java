package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.Device;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.InitialData;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import dev.ferry.orchestrator.metrics.FerryMetrics;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.LoopbackChannels;
import io.netty.buffer.Unpooled;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The destination's side of device data (F10, W7, F7, W8) over loopback channels, fed a real GPU's
 * stream: chunks that come early wait and are loaded in order, each on the channel its index routes
 * it to; the switchover is acknowledged once every announced round of initial data is loaded, and a
 * new round withdraws it until that one is loaded too.
 */
class IncomingDevicesTest {
    private static final int CHANNELS = 2;
    private static final long REINIT_MS = 50;

    private LoopbackChannels loopback;
    private Vm source;
    private Vm target;
    private Device gpu;
    private Device copy;
    private IncomingDevices incoming;
    private final List<FrameChannel> data = new ArrayList<>();
    private final BlockingQueue<Frame> acks = new LinkedBlockingQueue<>();
    private final PeerReplies replies = new PeerReplies("source");
    private FrameChannel control;
    private long offset;
    private long chunks;

    @BeforeEach
    void open() throws Exception {
        loopback = new LoopbackChannels();
        DeviceConfig config = DeviceConfig.of("gpu0", DeviceKind.GPU).withMemoryBytes(1 << 20).withReinitMs(REINIT_MS);
        VmConfig vm = new VmConfig("dev", 4L << 20, 1, InitialMemory.ZERO, WorkloadConfig.IDLE, P2pPolicy.AUTO, List.of(config));
        source = Vm.boot(vm);
        target = Vm.incoming(vm, Map.of("gpu0", 0), Vm.Options.DEFAULT);
        gpu = source.devices().get(0);
        copy = target.devices().get(0);
        gpu.ownWork(64, new SplittableRandom(5));
        LoopbackChannels.Pair control = loopback.open(ChannelRole.CONTROL, 0, (ch, frame) -> acks.add(frame), null);
        control.source().send(new Frame.VmDescription(4L << 20, 4096, CHANNELS, new byte[] {'{', '}'})).sync();
        // The source's session lets acknowledgements through only after the VM was accepted.
        control.destination().send(new Frame.VmAccepted()).sync();
        assertThat(acks.poll(5, TimeUnit.SECONDS)).isEqualTo(new Frame.VmAccepted());
        for (int c = 0; c < CHANNELS; c++) {
            data.add(loopback.open(ChannelRole.DATA, c, null, null).destination());
        }
        this.control = control.destination();
        incoming = incoming(FlowHooks.NONE, IncomingDevices.HIGH, 16L << 20);
        assertThat(gpu.setState(DeviceState.PRE_COPY).succeeded()).isTrue();
        assertThat(copy.setState(DeviceState.RESUMING).succeeded()).isTrue();
    }

    private IncomingDevices incoming(FlowHooks hooks, long high, long low) {
        return new IncomingDevices(List.of(copy), CHANNELS, control,
                new Migration("mig-test", Role.DESTINATION, "dev", "peer", Map.of()), new FerryMetrics("test"), () -> "precopy",
                hooks, replies, () -> { }, high, low);
    }

    @AfterEach
    void close() {
        incoming.discard();
        loopback.close();
        source.close();
        target.close();
        replies.close();
    }

    /** Reads what the source GPU has ready, as frames routed the source's way: chunk k on channel k mod n. */
    private List<Frame.DeviceData> read() {
        List<Frame.DeviceData> frames = new ArrayList<>();
        ByteBuffer chunk = ByteBuffer.allocate(16 << 10);
        for (int n = gpu.readWindow(chunk.clear()); n > 0; n = gpu.readWindow(chunk.clear())) {
            frames.add(new Frame.DeviceData(0, offset, Unpooled.copiedBuffer(chunk.flip())));
            offset += n;
        }
        return frames;
    }

    /** The failure the flow takes from its replies: present, with this code and this in its message. */
    private MigrationFailure failedWith(String code, String message) {
        MigrationFailure failure = replies.ended();
        assertThat(failure).isNotNull();
        assertThat(failure.code()).isEqualTo(code);
        assertThat(failure.getMessage()).contains(message);
        return failure;
    }

    private void deliver(Frame.DeviceData frame, long index) {
        incoming.chunk(data.get((int) (index % CHANNELS)), frame);
    }

    private void announce(InitialData initial) throws Exception {
        incoming.announced(new Frame.DeviceInitial(0, initial.generation(), initial.endOffset()));
    }

    @Test
    void chunksThatComeEarlyAreLoadedInOrderAndTheSwitchoverIsAcknowledgedOnceLoaded() throws Exception {
        List<Frame.DeviceData> frames = read();
        assertThat(frames).hasSizeGreaterThan(4);
        InitialData initial = gpu.initialData();
        assertThat(initial.complete()).isTrue();
        announce(initial);
        assertThat(acks.poll(100, TimeUnit.MILLISECONDS)).as("nothing is loaded yet").isNull();

        // Reversed within each pair of channels' chunks: every odd chunk comes before the even one before it.
        for (int i = 0; i + 1 < frames.size(); i += 2) {
            deliver(frames.get(i + 1), i + 1);
            // Loaded counts whole records only (W7): at most up to the chunk still missing.
            assertThat(copy.loadedBytes()).isLessThanOrEqualTo(frames.get(i).offset());
            deliver(frames.get(i), i);
            assertThat(copy.loadedBytes()).as("loaded as it arrives").isGreaterThan(frames.get(i).offset() - (16 << 10));
        }
        if (frames.size() % 2 == 1) {
            deliver(frames.get(frames.size() - 1), frames.size() - 1);
        }
        chunks = frames.size();
        assertThat(copy.loadedBytes()).isEqualTo(offset);
        Frame ack = acks.poll(5, TimeUnit.SECONDS);
        assertThat(ack).isEqualTo(new Frame.SwitchoverAck(1));
        assertThat(replies.ended()).as("no failure").isNull();
    }

    /** A frame read in several pieces arrives as a composite buffer: its parts are loaded in order, none merged into a copy. */
    @Test
    void aChunkInSeveralPiecesIsLoadedPieceByPiece() throws Exception {
        List<Frame.DeviceData> frames = read();
        for (int i = 0; i < frames.size(); i++) {
            Frame.DeviceData whole = frames.get(i);
            io.netty.buffer.ByteBuf content = whole.content();
            int half = content.readableBytes() / 3;
            io.netty.buffer.CompositeByteBuf pieces = Unpooled.compositeBuffer();
            pieces.addComponent(true, content.retainedSlice(content.readerIndex(), half));
            pieces.addComponent(true, content.retainedSlice(content.readerIndex() + half, content.readableBytes() - half));
            whole.release();
            assertThat(pieces.nioBufferCount()).isEqualTo(2);
            deliver(new Frame.DeviceData(0, whole.offset(), pieces), i);
        }
        assertThat(copy.loadedBytes()).isEqualTo(offset);
        assertThat(replies.ended()).as("no failure").isNull();
    }

    /** W8: a new round of initial data withdraws the acknowledgement until that round is loaded. */
    @Test
    void aReinitialisationWithdrawsTheAcknowledgementUntilItsDataIsLoaded() throws Exception {
        List<Frame.DeviceData> first = read();
        announce(gpu.initialData());
        for (int i = 0; i < first.size(); i++) {
            deliver(first.get(i), i);
        }
        chunks = first.size();
        assertThat(acks.poll(5, TimeUnit.SECONDS)).isEqualTo(new Frame.SwitchoverAck(1));

        // The GPU re-partitions its memory: a new round of initial data.
        boolean more = gpu.advanceOwnWork(REINIT_MS * 1_000_000L);
        for (int steps = 0; more && steps < 10_000; steps++) {
            more = gpu.advanceOwnWork(0);
        }
        List<Frame.DeviceData> second = read();
        InitialData round = gpu.initialData();
        assertThat(round.generation()).isEqualTo(1);
        announce(round);
        assertThat(acks.poll(100, TimeUnit.MILLISECONDS)).as("withdrawn until the new round is loaded").isNull();
        for (int i = 0; i < second.size(); i++) {
            deliver(second.get(i), chunks + i);
        }
        assertThat(acks.poll(5, TimeUnit.SECONDS)).isEqualTo(new Frame.SwitchoverAck(2));
    }

    /** F10: a chunk on the wrong channel for its index is a protocol error; nothing after it is loaded. */
    @Test
    void aChunkOnTheWrongChannelFailsTheMigration() throws Exception {
        List<Frame.DeviceData> frames = read();
        deliver(frames.get(0), 1);
        // The failure is queued for the flow, which takes it from its replies.
        failedWith(MigrationFailure.PROTOCOL_ERROR, "came on data channel 1, not 0");
        deliver(frames.get(1), 1);
        assertThat(copy.loadedBytes()).as("nothing loaded after the failure").isZero();
        for (int i = 2; i < frames.size(); i++) {
            frames.get(i).release();
        }
    }

    /**
     * F10: with as many devices as channels, each device keeps to one channel ({@link DeviceStreams#channelOf}):
     * device 1's chunks all come on channel 1 and load in order there; one of them on channel 0 is a
     * protocol error, and nothing after it loads.
     */
    @Test
    void withAsManyDevicesAsChannelsEachDeviceKeepsToItsOwnChannel() throws Exception {
        List<DeviceConfig> configs = List.of(DeviceConfig.of("gpu0", DeviceKind.GPU).withMemoryBytes(1 << 20),
                DeviceConfig.of("gpu1", DeviceKind.GPU).withMemoryBytes(1 << 20));
        VmConfig config = new VmConfig("two", 4L << 20, 1, InitialMemory.ZERO, WorkloadConfig.IDLE, P2pPolicy.AUTO, configs);
        try (Vm from = Vm.boot(config); Vm to = Vm.incoming(config, Map.of("gpu0", 0, "gpu1", 1), Vm.Options.DEFAULT)) {
            Device sent = from.devices().get(1);
            Device loaded = to.devices().get(1);
            sent.ownWork(64, new SplittableRandom(11));
            assertThat(sent.setState(DeviceState.PRE_COPY).succeeded()).isTrue();
            assertThat(loaded.setState(DeviceState.RESUMING).succeeded()).isTrue();
            assertThat(DeviceStreams.channelOf(1, 0, 2, CHANNELS)).isEqualTo(1);
            IncomingDevices two = new IncomingDevices(to.devices(), CHANNELS, control,
                    new Migration("mig-two", Role.DESTINATION, "two", "peer", Map.of()), new FerryMetrics("test"), () -> "precopy",
                    FlowHooks.NONE, replies, () -> { }, IncomingDevices.HIGH, 16L << 20);
            try {
                List<Frame.DeviceData> frames = new ArrayList<>();
                ByteBuffer chunk = ByteBuffer.allocate(16 << 10);
                long at = 0;
                for (int n = sent.readWindow(chunk.clear()); n > 0; n = sent.readWindow(chunk.clear())) {
                    frames.add(new Frame.DeviceData(1, at, Unpooled.copiedBuffer(chunk.flip())));
                    at += n;
                }
                assertThat(frames).hasSizeGreaterThan(4);
                for (Frame.DeviceData frame : frames) {
                    two.chunk(data.get(1), frame);
                }
                assertThat(loaded.loadedBytes()).as("every chunk on channel 1, loaded in order").isEqualTo(at);
                assertThat(replies.ended()).as("no failure").isNull();

                // The device's work gives it more to send; its next chunk comes on the other channel.
                sent.ownWork(64, new SplittableRandom(12));
                int n = sent.readWindow(chunk.clear());
                assertThat(n).isPositive();
                two.chunk(data.get(0), new Frame.DeviceData(1, at, Unpooled.copiedBuffer(chunk.flip())));
                failedWith(MigrationFailure.PROTOCOL_ERROR, "of device gpu1 came on data channel 0, not 1");
                assertThat(loaded.loadedBytes()).as("nothing loaded from the wrong channel").isEqualTo(at);
            } finally {
                two.discard();
            }
        }
    }

    /**
     * A device whose load throws, instead of answering with a failed write, fails the migration as a failed
     * write does (D8, found while loading, W7), and the stream is let go: what arrives after is released, and PREPARE's wait for a running
     * load ends at once with that failure (it would wait out its bound on a stream left marked as loading).
     */
    @Test
    void aLoadThatThrowsFailsTheMigrationAndLetsTheStreamGo() throws Exception {
        incoming.discard();
        incoming = incoming(new FlowHooks() {
            @Override
            public void deviceData(String deviceId, ByteBuffer chunk) {
                throw new IllegalStateException("the window closed under a teardown");
            }
        }, IncomingDevices.HIGH, 16L << 20);
        List<Frame.DeviceData> frames = read();
        deliver(frames.get(0), 0);
        MigrationFailure failure = failedWith(MigrationFailure.DEVICE_LOAD_FAILED, "the window closed under a teardown");
        for (int i = 1; i < frames.size(); i++) {
            deliver(frames.get(i), i);
            assertThat(frames.get(i).refCnt()).as("chunk %d released", i).isZero();
        }
        assertThat(incoming.incomplete()).isSameAs(failure);
    }

    /** Once the flow has let go (discard), a chunk that still arrives is released, never queued. */
    @Test
    void aChunkThatArrivesAfterTheFlowLetGoIsReleased() {
        List<Frame.DeviceData> frames = read();
        incoming.discard();
        Frame.DeviceData late = frames.get(1);
        deliver(late, 1);
        assertThat(late.refCnt()).isZero();
        assertThat(replies.ended()).as("not a failure: the migration is already over").isNull();
        frames.get(0).release();
        for (int i = 2; i < frames.size(); i++) {
            frames.get(i).release();
        }
    }

    /**
     * F10: a loop never waits for another's load. While one loop loads a chunk (held inside the device's
     * write), the other loop's chunks of the same device are queued and it goes back to its channel;
     * the loop that was loading takes them in order once its chunk is in.
     */
    @Test
    void aChunkThatArrivesWhileAnotherLoopLoadsItsDeviceIsQueuedWithoutWaiting() throws Exception {
        CountDownLatch loading = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicBoolean first = new AtomicBoolean(true);
        incoming.discard();
        incoming = incoming(new FlowHooks() {
            @Override
            public void deviceData(String deviceId, ByteBuffer chunk) {
                if (first.getAndSet(false)) {
                    loading.countDown();
                    try {
                        release.await(10, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }
        }, IncomingDevices.HIGH, 16L << 20);
        List<Frame.DeviceData> frames = read();
        assertThat(frames).hasSizeGreaterThan(4);
        ExecutorService loops = Executors.newFixedThreadPool(2);
        try {
            Future<?> loader = loops.submit(() -> deliver(frames.get(0), 0));
            assertThat(loading.await(5, TimeUnit.SECONDS)).isTrue();
            // Every later chunk, from the other "loop", while the first is still being loaded.
            Future<?> other = loops.submit(() -> {
                for (int i = 1; i < frames.size(); i++) {
                    deliver(frames.get(i), i);
                }
            });
            other.get(5, TimeUnit.SECONDS);
            assertThat(loader.isDone()).as("the first loop is still inside its load").isFalse();
            assertThat(copy.loadedBytes()).as("nothing loaded while the first chunk is held").isZero();
            release.countDown();
            loader.get(5, TimeUnit.SECONDS);
        } finally {
            release.countDown();
            loops.shutdownNow();
        }
        assertThat(copy.loadedBytes()).as("the loading loop took every queued chunk in order").isEqualTo(offset);
        assertThat(replies.ended()).as("no failure").isNull();
    }

    /**
     * F10: what waits is bounded. Above the bound a channel that brings more is paused, but never the one
     * that carries the first chunk still to come; once that chunk is in and the queue drained, the
     * paused channel is read again.
     */
    @Test
    void aboveTheBoundAChannelIsPausedButNeverTheOneThatCarriesTheNextChunk() throws Exception {
        incoming.discard();
        incoming = incoming(FlowHooks.NONE, 64 << 10, 16 << 10);
        List<Frame.DeviceData> frames = read();
        assertThat(frames.size()).as("enough chunks to pass the bound").isGreaterThan(12);
        // Chunk 0, on channel 0, is withheld: everything else waits.
        for (int i = 1; i < frames.size(); i++) {
            deliver(frames.get(i), i);
        }
        assertThat(copy.loadedBytes()).isZero();
        assertThat(data.get(1).channel().config().isAutoRead()).as("channel 1 brought more than the bound").isFalse();
        assertThat(data.get(0).channel().config().isAutoRead()).as("channel 0 carries chunk 0").isTrue();

        deliver(frames.get(0), 0);
        assertThat(copy.loadedBytes()).isEqualTo(offset);
        // Resumed on the channel's own event loop.
        Awaitility.await().atMost(Duration.ofSeconds(5)).until(() -> data.get(1).channel().config().isAutoRead());
        assertThat(replies.ended()).as("no failure").isNull();
    }
}
