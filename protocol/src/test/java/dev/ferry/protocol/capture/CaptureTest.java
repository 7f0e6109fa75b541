package dev.ferry.protocol.capture;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameType;
import dev.ferry.protocol.PageRouting;
import dev.ferry.protocol.PagesBuilder;
import dev.ferry.protocol.ProtocolVersion;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.FrameHandler;
import dev.ferry.protocol.net.LoopbackChannels;
import io.netty.buffer.Unpooled;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Captures of real channels on 127.0.0.1: both ends of a short session captured and read back, every
 * check holding and each side's frames the other's; page data left out or kept; a damaged byte named by
 * the check it breaks; a writer held up by its sink drops frames instead of holding the channels, and
 * says so; a pending tap attached later or declined.
 */
class CaptureTest {
    private static final int PAGES = 2 * PageRouting.RUN_PAGES;
    private static final Duration WAIT = Duration.ofSeconds(20);

    @TempDir
    Path dir;
    private LoopbackChannels loopback;

    @BeforeEach
    void open() {
        loopback = new LoopbackChannels();
    }

    @AfterEach
    void close() {
        loopback.close();
    }

    /** Keeps what a channel's end receives. */
    private static final class Inbox implements FrameHandler {
        final BlockingQueue<Frame> frames = new LinkedBlockingQueue<>();
        final AtomicInteger deviceData = new AtomicInteger();

        @Override
        public void frameReceived(FrameChannel channel, Frame frame) {
            if (frame instanceof Frame.DeviceData || frame instanceof Frame.Pages) {
                if (frame instanceof Frame.DeviceData) {
                    deviceData.incrementAndGet();
                }
                ReferenceCountUtil.release(frame);
                return;
            }
            frames.add(frame);
        }

        <T extends Frame> T next(Class<T> type) throws InterruptedException {
            while (true) {
                Frame frame = frames.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
                assertThat(frame).as("a %s", type.getSimpleName()).isNotNull();
                if (type.isInstance(frame)) {
                    return type.cast(frame);
                }
            }
        }
    }

    /** A session of one control and two data channels, captured at both ends. */
    private final class Session {
        final Inbox sourceInbox = new Inbox();
        final Inbox destinationInbox = new Inbox();
        final LoopbackChannels.Pair control;
        final List<LoopbackChannels.Pair> data = new ArrayList<>();
        final CaptureWriter source;
        final CaptureWriter destination;

        Session(boolean pageData, WritableByteChannel sourceSink, long queueBytes) throws Exception {
            control = loopback.open(ChannelRole.CONTROL, 0, sourceInbox, destinationInbox);
            for (int c = 0; c < 2; c++) {
                LoopbackChannels.Pair pair = loopback.open(ChannelRole.DATA, c, null, destinationInbox);
                pair.destination().setPageRouting(new PageRouting(PAGES, 2, c));
                data.add(pair);
            }
            long start = System.nanoTime();
            source = CaptureWriter.start(sourceSink, header(CaptureFormat.Side.SOURCE, pageData), start, queueBytes, "test-capture-source");
            destination = CaptureWriter.start(file("destination.fcap"), header(CaptureFormat.Side.DESTINATION, pageData), start,
                    CaptureWriter.DEFAULT_QUEUE_BYTES, "test-capture-destination");
            source.tap(control.source());
            destination.tap(control.destination());
            for (LoopbackChannels.Pair pair : data) {
                source.tap(pair.source());
                destination.tap(pair.destination());
            }
        }

        /** VM_DESCRIPTION to CONFIRM, with one iteration of pages and {@code chunks} chunks of device data. */
        void migrate(int chunks, int chunkBytes) throws Exception {
            SplittableRandom random = new SplittableRandom(7);
            control.source().send(new Frame.VmDescription((long) PAGES * 4096, 4096, 2, "{\"id\":\"vm1\"}".getBytes()));
            destinationInbox.next(Frame.VmDescription.class);
            control.destination().send(new Frame.VmAccepted());
            sourceInbox.next(Frame.VmAccepted.class);
            for (int c = 0; c < 2; c++) {
                FrameChannel channel = data.get(c).source();
                PagesBuilder pages = new PagesBuilder(channel.channel().alloc(), 0);
                for (long page = (long) c * PageRouting.RUN_PAGES; page < (c + 1L) * PageRouting.RUN_PAGES; page++) {
                    if (page % 4 == 0) {
                        pages.addZero(page);
                    } else {
                        byte[] bytes = new byte[4096];
                        random.nextBytes(bytes);
                        pages.addCopy(page, ByteBuffer.wrap(bytes));
                    }
                }
                channel.sendWhenWritable(pages.build());
            }
            FrameChannel first = data.get(0).source();
            for (int i = 0; i < chunks; i++) {
                byte[] chunk = new byte[chunkBytes];
                random.nextBytes(chunk);
                first.sendWhenWritable(new Frame.DeviceData(0, (long) i * chunkBytes, Unpooled.wrappedBuffer(chunk)));
            }
            for (LoopbackChannels.Pair pair : data) {
                pair.source().sendWhenWritable(new Frame.DataEnd(0, PageRouting.RUN_PAGES));
                pair.source().sendWhenWritable(new Frame.ChannelEnd(PageRouting.RUN_PAGES));
            }
            control.source().send(new Frame.DeviceEnd(0, (long) chunks * chunkBytes));
            control.source().send(new Frame.IterationEnd(0, PAGES, 0));
            destinationInbox.next(Frame.IterationEnd.class);
            control.destination().send(new Frame.IterationDone(0));
            sourceInbox.next(Frame.IterationDone.class);
            control.source().send(new Frame.Prepare(false));
            destinationInbox.next(Frame.Prepare.class);
            control.destination().send(new Frame.Prepared(new byte[0], 10));
            sourceInbox.next(Frame.Prepared.class);
            control.source().send(new Frame.Commit());
            destinationInbox.next(Frame.Commit.class);
            control.destination().send(new Frame.Confirm(20));
            sourceInbox.next(Frame.Confirm.class);
        }

        void end() throws Exception {
            for (LoopbackChannels.Pair pair : data) {
                pair.source().close().sync();
            }
            control.source().close().sync();
            source.finish("completed");
            destination.finish("completed");
            assertThat(source.awaitClosed(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
            assertThat(destination.awaitClosed(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        }
    }

    private CaptureHeader header(CaptureFormat.Side side, boolean pageData) {
        return new CaptureHeader(CaptureFormat.VERSION, pageData, ProtocolVersion.CURRENT, side, loopback.session(),
                System.currentTimeMillis(), "{\"migration\":\"mig-test\"}");
    }

    private FileChannel file(String name) throws IOException {
        return FileChannel.open(dir.resolve(name), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
    }

    /** What a capture holds, checked. */
    private record Read(CaptureHeader header, List<CaptureRecord.FrameRecord> frames, List<CaptureRecord.Gap> gaps,
                        List<FrameChecks.Failure> failures, CaptureRecord.End end, int pagesFrames, int crcChecked) {
        /** The frames from the source or from the destination, without keepalives, as bytes, channel by channel. */
        java.util.Map<CaptureFormat.Channel, List<String>> session(boolean fromSource) {
            java.util.Map<CaptureFormat.Channel, List<String>> out = new java.util.TreeMap<>();
            for (CaptureRecord.FrameRecord frame : frames) {
                int type = frame.typeCode();
                if (frame.direction().fromSource(header.side()) == fromSource && type != FrameType.KEEPALIVE.code()
                        && type != FrameType.KEEPALIVE_ACK.code()) {
                    out.computeIfAbsent(frame.channel(), c -> new ArrayList<>()).add(java.util.HexFormat.of().formatHex(frame.bytes()));
                }
            }
            return out;
        }
    }

    private static Read read(Path file) throws Exception {
        List<CaptureRecord.FrameRecord> frames = new ArrayList<>();
        List<CaptureRecord.Gap> gaps = new ArrayList<>();
        List<FrameChecks.Failure> failures = new ArrayList<>();
        CaptureRecord.End end = null;
        int pages = 0;
        int crc = 0;
        try (CaptureReader reader = CaptureReader.open(file)) {
            FrameChecks checks = new FrameChecks(reader.header().side());
            for (CaptureRecord record = reader.next(); record != null; record = reader.next()) {
                if (record instanceof CaptureRecord.FrameRecord frame) {
                    frames.add(frame);
                    FrameChecks.Checked checked = checks.check(frame);
                    failures.addAll(checked.failures());
                    if (checked.frame() instanceof Frame.Pages) {
                        pages++;
                    }
                    if (checked.frame() != null) {
                        crc++;
                    }
                    ReferenceCountUtil.release(checked.frame());
                } else if (record instanceof CaptureRecord.Gap gap) {
                    gaps.add(gap);
                    checks.gap(gap);
                } else {
                    end = (CaptureRecord.End) record;
                }
            }
            return new Read(reader.header(), frames, gaps, failures, end, pages, crc);
        }
    }

    @Test
    void bothEndsCaptureTheSameFramesAndEveryCheckHolds() throws Exception {
        Session session = new Session(false, file("source.fcap"), CaptureWriter.DEFAULT_QUEUE_BYTES);
        session.migrate(3, 1000);
        session.end();

        Read source = read(dir.resolve("source.fcap"));
        Read destination = read(dir.resolve("destination.fcap"));
        assertThat(source.failures()).isEmpty();
        assertThat(destination.failures()).isEmpty();
        assertThat(source.header().side()).isEqualTo(CaptureFormat.Side.SOURCE);
        assertThat(source.header().metadata()).isEqualTo("{\"migration\":\"mig-test\"}");
        assertThat(source.end()).isNotNull();
        assertThat(source.end().outcome()).isEqualTo("completed");
        assertThat(source.end().droppedFrames()).isZero();
        assertThat(source.gaps()).isEmpty();
        // What one side sent is what the other received, byte for byte, in the same order.
        assertThat(source.session(true)).isNotEmpty().isEqualTo(destination.session(true));
        assertThat(source.session(false)).isNotEmpty().isEqualTo(destination.session(false));
        assertThat(source.session(true)).containsOnlyKeys(CaptureFormat.Channel.CONTROL, CaptureFormat.Channel.data(0),
                CaptureFormat.Channel.data(1));
        // Without page data a PAGES frame keeps its meta, which its CRC covers: everything is checked but its pages' own CRCs.
        assertThat(source.pagesFrames()).isEqualTo(2);
        assertThat(source.frames()).filteredOn(f -> f.typeCode() == FrameType.PAGES.code())
                .allMatch(CaptureRecord.FrameRecord::pageDataLeftOut)
                .allMatch(f -> f.bytes().length == 16 + Frame.Pages.metaBytes(PageRouting.RUN_PAGES));
        assertThat(source.crcChecked()).as("the frame's CRC covers its meta").isEqualTo(source.frames().size());
        assertThat(session.source.stats().frames()).isEqualTo(source.frames().size());
        assertThat(session.source.stats().closed()).isTrue();
    }

    @Test
    void withPageDataEveryFrameIsWholeAndItsCrcChecked() throws Exception {
        Session session = new Session(true, file("source.fcap"), CaptureWriter.DEFAULT_QUEUE_BYTES);
        session.migrate(1, 100);
        session.end();
        Read source = read(dir.resolve("source.fcap"));
        assertThat(source.failures()).isEmpty();
        assertThat(source.frames()).noneMatch(CaptureRecord.FrameRecord::pageDataLeftOut);
        assertThat(source.crcChecked()).isEqualTo(source.frames().size());
    }

    @Test
    void aDamagedByteIsNamedByTheCheckItBreaksWithTheFramesPlace() throws Exception {
        Session session = new Session(false, file("source.fcap"), CaptureWriter.DEFAULT_QUEUE_BYTES);
        session.migrate(2, 500);
        session.end();
        Path file = dir.resolve("source.fcap");
        CaptureRecord.FrameRecord chunk = TestCaptures.first(file, FrameType.DEVICE_DATA);
        TestCaptures.damage(file, chunk, 10 + 100);
        Read damaged = read(file);
        assertThat(damaged.failures()).hasSize(1);
        FrameChecks.Failure failure = damaged.failures().get(0);
        assertThat(failure.check()).isEqualTo("checksum");
        assertThat(failure.frame().channel()).isEqualTo(CaptureFormat.Channel.data(0));
        assertThat(failure.frame().offset()).isEqualTo(chunk.offset());
        assertThat(failure.message()).contains("DEVICE_DATA");
    }

    /**
     * A sink that takes nothing until the test lets it: the writer thread waits in it, the queue fills,
     * and frames are dropped and counted; the channels never wait for the capture.
     */
    @Test
    void aWriterHeldUpByItsSinkDropsFramesAndSaysSoInsteadOfHoldingTheChannels() throws Exception {
        CountDownLatch gate = new CountDownLatch(1);
        Session session = new Session(false, new GatedSink(file("source.fcap"), gate), 64 << 10);
        int chunks = 200;
        session.migrate(chunks, 16 << 10);
        // Every chunk reached the destination while the source's writer could not write a byte.
        await().atMost(WAIT).until(() -> session.destinationInbox.deviceData.get() == chunks);
        CaptureWriter.Stats held = session.source.stats();
        assertThat(held.droppedFrames()).isPositive();
        assertThat(held.fileBytes()).isZero();

        gate.countDown();
        session.end();
        Read source = read(dir.resolve("source.fcap"));
        CaptureWriter.Stats stats = session.source.stats();
        assertThat(source.failures()).as("gaps explain the missing sequence numbers").isEmpty();
        assertThat(source.gaps()).isNotEmpty();
        assertThat(source.gaps().stream().mapToLong(CaptureRecord.Gap::frames).sum()).isEqualTo(stats.droppedFrames());
        assertThat(source.end().droppedFrames()).isEqualTo(stats.droppedFrames());
        assertThat(source.end().droppedBytes()).isEqualTo(stats.droppedBytes());
        assertThat(read(dir.resolve("destination.fcap")).gaps()).isEmpty();
    }

    @Test
    void aPendingTapKeepsWhatItSawUntilAttachedOrLetsItGoWhenDeclined() throws Exception {
        Inbox inbox = new Inbox();
        LoopbackChannels.Pair kept = loopback.open(ChannelRole.CONTROL, 0, null, inbox);
        CaptureTap tap = CaptureTap.pending(kept.destination());
        await().atMost(WAIT).until(() -> kept.destination().channel().pipeline().get(CaptureTap.class) != null);
        kept.source().send(new Frame.VmDescription(4096, 4096, 1, new byte[10]));
        inbox.next(Frame.VmDescription.class);
        CaptureWriter writer = CaptureWriter.start(file("pending.fcap"), header(CaptureFormat.Side.DESTINATION, false),
                System.nanoTime(), CaptureWriter.DEFAULT_QUEUE_BYTES, "test-capture");
        tap.attach(writer);
        kept.destination().send(new Frame.VmAccepted());
        kept.source().close().sync();
        await().atMost(WAIT).until(() -> !kept.destination().isOpen());
        writer.finish("failed");
        assertThat(writer.awaitClosed(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
        Read read = read(dir.resolve("pending.fcap"));
        assertThat(read.failures()).isEmpty();
        assertThat(read.frames()).extracting(CaptureRecord.FrameRecord::typeCode)
                .containsSubsequence(FrameType.VM_DESCRIPTION.code(), FrameType.VM_ACCEPTED.code());

        LoopbackChannels.Pair declined = loopback.open(ChannelRole.CONTROL, 0, null, inbox);
        CaptureTap other = CaptureTap.pending(declined.destination());
        declined.source().send(new Frame.VmDescription(4096, 4096, 1, new byte[10]));
        inbox.next(Frame.VmDescription.class);
        other.decline();
        await().atMost(WAIT).until(() -> declined.destination().channel().pipeline().get(CaptureTap.class) == null);
        declined.source().close().sync();
    }
}
