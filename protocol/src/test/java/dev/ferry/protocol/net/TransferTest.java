package dev.ferry.protocol.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PagesBuilder;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.transfer.PageReceiver;
import dev.ferry.protocol.transfer.PageSender;
import dev.ferry.protocol.transfer.PageSet;
import dev.ferry.protocol.transfer.RateLimiter;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Page runs over real loopback sessions. */
class TransferTest {
    private static final int PAGE = 4096;
    private static final long SEED = 424242;
    private static ByteBuffer gigabyte;
    private static ByteBuffer received;
    private static ExecutorService senders;

    private Loopback loopback;
    private TestAcceptor acceptor;

    @BeforeAll
    static void memory() {
        gigabyte = ByteBuffer.allocateDirect(1 << 30);
        fill(gigabyte, SEED);
        received = ByteBuffer.allocateDirect(1 << 30);
        senders = Executors.newCachedThreadPool();
    }

    @AfterAll
    static void release() {
        gigabyte = null;
        received = null;
        senders.shutdownNow();
    }

    /** Pseudo-random content, every seventh page zero. */
    private static void fill(ByteBuffer memory, long seed) {
        long x = seed | 1;
        for (int at = 0; at < memory.capacity(); at += 8) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            memory.putLong(at, (at / PAGE) % 7 == 0 ? 0 : x);
        }
    }

    @AfterEach
    void close() {
        if (loopback != null) {
            loopback.close();
        }
    }

    private record Session(FrameChannel control, List<FrameChannel> data, TestAcceptor.Session destination) {
    }

    private Session open(long memoryBytes, int channels) throws Exception {
        return open(memoryBytes, channels, new TestAcceptor());
    }

    private Session open(long memoryBytes, int channels, TestAcceptor destination) throws Exception {
        acceptor = destination;
        loopback = new Loopback(Loopback.config("k"), Loopback.config("k"), acceptor);
        SessionId id = SessionId.random();
        BlockingQueue<Frame> replies = new LinkedBlockingQueue<>();
        FrameChannel control = loopback.connect(id, ChannelRole.CONTROL, 0, (ch, frame) -> replies.add(frame));
        control.send(new Frame.VmDescription(memoryBytes, PAGE, channels, new byte[0]));
        assertThat(replies.poll(30, TimeUnit.SECONDS)).isInstanceOf(Frame.VmAccepted.class);
        List<FrameChannel> data = new ArrayList<>();
        for (int c = 0; c < channels; c++) {
            data.add(loopback.connect(id, ChannelRole.DATA, c, null));
        }
        return new Session(control, data, acceptor.sessions.get(id));
    }

    private static PageSender sender(Session session) {
        return new PageSender(session.data(), senders, RateLimiter.unlimited());
    }

    private static void awaitEnded(Session session) throws Exception {
        long total = 0;
        for (PageReceiver receiver : session.destination().receivers) {
            total += receiver.ended().get(60, TimeUnit.SECONDS);
        }
        assertThat(total).isPositive();
    }

    @Test
    void oneGigabyteArrivesIntactOverOneTwoAndFourChannels() throws Exception {
        long pages = gigabyte.capacity() / PAGE;
        for (int channels : new int[] {1, 2, 4}) {
            // A marker in every byte: whatever the transfer does not write stays visibly wrong.
            for (int at = 0; at < received.capacity(); at += 8) {
                received.putLong(at, 0x5A5A5A5A5A5A5A5AL);
            }
            Session session = open(gigabyte.capacity(), channels, new TestAcceptor(bytes -> received));
            PageSender sender = sender(session);
            PageSender.Result result = sender.send(0, PageSet.all(pages), index -> page(gigabyte, index));
            sender.finish();
            awaitEnded(session);
            assertThat(result.pages()).isEqualTo(pages);
            assertThat(result.zeroPages()).isEqualTo((pages + 6) / 7);
            assertThat(session.destination().memory).isSameAs(received);
            assertThat(received.mismatch(gigabyte)).as("first differing byte over %d channels", channels).isEqualTo(-1);
            long perChannel = 0;
            for (PageReceiver receiver : session.destination().receivers) {
                perChannel = Math.max(perChannel, receiver.pages());
            }
            assertThat(perChannel).as("pages spread over the channels").isLessThanOrEqualTo(pages / channels + 64);
            session.control().close().sync();
            loopback.close();
            loopback = null;
        }
    }

    /** A page that is zero in memory is sent as a flag: null view. */
    private static ByteBuffer page(ByteBuffer memory, long index) {
        ByteBuffer view = memory.slice((int) (index * PAGE), PAGE);
        return view.getLong(0) == 0 && view.mismatch(ByteBuffer.allocate(PAGE)) == -1 ? null : view;
    }

    @Test
    void aPageSentAgainInALaterIterationAlwaysWins() throws Exception {
        int memoryBytes = 64 << 20;
        long pages = memoryBytes / PAGE;
        ByteBuffer source = ByteBuffer.allocateDirect(memoryBytes);
        fill(source, SEED + 1);
        Session session = open(memoryBytes, 4);
        PageSender sender = sender(session);
        sender.send(0, PageSet.all(pages), index -> page(source, index));
        SplittableRandom random = new SplittableRandom(SEED);
        for (int iteration = 1; iteration <= 8; iteration++) {
            BitSet dirty = new BitSet((int) pages);
            // Half of the pages of a small hot set change every time, the rest anywhere.
            for (int i = 0; i < 3000; i++) {
                long page = i % 2 == 0 ? random.nextLong(256) : random.nextLong(pages);
                dirty.set((int) page);
                source.putLong((int) (page * PAGE + random.nextInt(PAGE / 8) * 8), random.nextLong());
            }
            PageSet set = from -> {
                int next = dirty.nextSetBit((int) Math.max(0, from));
                return next < 0 ? -1 : next;
            };
            PageSender.Result result = sender.send(iteration, set, index -> page(source, index));
            assertThat(result.pages()).isEqualTo(dirty.cardinality());
        }
        sender.finish();
        awaitEnded(session);
        assertThat(session.destination().memory.mismatch(source)).isEqualTo(-1);
    }

    @Test
    void runsOfStablePagesGoAsOneBufferAndScatteredOnesAsCopiesAndAllArriveIntact() throws Exception {
        int memoryBytes = 64 << 20;
        long pages = memoryBytes / PAGE;
        ByteBuffer source = ByteBuffer.allocateDirect(memoryBytes);
        // Three zero pages in every hundred: long runs between them.
        SplittableRandom content = new SplittableRandom(SEED + 2);
        for (int at = 0; at < memoryBytes; at += 8) {
            source.putLong(at, (at / PAGE) % 100 < 3 ? 0 : content.nextLong() | 1);
        }
        AtomicInteger runs = new AtomicInteger();
        dev.ferry.protocol.transfer.PageSource memory = new dev.ferry.protocol.transfer.PageSource() {
            @Override
            public ByteBuffer page(long index) {
                return TransferTest.page(source, index);
            }

            @Override
            public ByteBuffer run(long first, int count) {
                runs.incrementAndGet();
                return source.slice((int) (first * PAGE), count * PAGE);
            }
        };
        Session session = open(memoryBytes, 2);
        PageSender sender = sender(session);
        PageSender.Result full = sender.send(0, PageSet.all(pages), memory);
        assertThat(full.zeroPages()).isEqualTo(pages / 100 * 3 + Math.min(3, pages % 100));
        assertThat(runs.get()).as("runs went as one buffer each").isPositive();
        // Then scattered pages, changed and sent again: page by page, runs only where pages are consecutive.
        SplittableRandom random = new SplittableRandom(SEED + 3);
        BitSet dirty = new BitSet((int) pages);
        for (int i = 0; i < 2000; i++) {
            long page = random.nextLong(pages);
            dirty.set((int) page);
            source.putLong((int) (page * PAGE + random.nextInt(PAGE / 8) * 8), random.nextLong() | 1);
        }
        int runsBefore = runs.get();
        PageSender.Result scattered = sender.send(1, from -> {
            int next = dirty.nextSetBit((int) Math.max(0, from));
            return next < 0 ? -1 : next;
        }, memory);
        assertThat(scattered.pages()).isEqualTo(dirty.cardinality());
        assertThat(runs.get() - runsBefore).as("few runs among scattered pages").isLessThan(dirty.cardinality() / 8);
        sender.finish();
        awaitEnded(session);
        assertThat(session.destination().memory.mismatch(source)).isEqualTo(-1);
    }

    @Test
    void aPageOnTheWrongChannelEndsTheSession() throws Exception {
        Session session = open(1 << 20, 2);
        FrameChannel second = session.data().get(1);
        BlockingQueue<Frame> replies = new LinkedBlockingQueue<>();
        second.setHandler((ch, frame) -> replies.add(frame));
        // Page 0 belongs on channel 0: sending it on channel 1 could let it overtake a newer copy.
        Frame.Pages wrong = new PagesBuilder(second.channel().alloc(), 0).addCopy(0, ByteBuffer.allocate(PAGE)).build();
        second.send(wrong);
        Frame reply = replies.poll(30, TimeUnit.SECONDS);
        assertThat(reply).isInstanceOf(Frame.Abort.class);
        assertThat(((Frame.Abort) reply).code()).isEqualTo(ErrorCode.OUT_OF_ORDER);
        assertThat(((Frame.Abort) reply).message()).contains("does not belong on data channel 1");
        await().atMost(Duration.ofSeconds(10)).until(() -> !second.isOpen());
        assertThat(session.destination().memory.getLong(0)).isZero();
    }

    @Test
    void aSlowReceiverStopsTheSenderAtTheHighWatermark() throws Exception {
        Session session = open(64 << 20, 1);
        FrameChannel destination = session.destination().dataChannels.get(0);
        destination.pauseReading();
        FrameChannel out = session.data().get(0);
        AtomicInteger queued = new AtomicInteger();
        ByteBuffer page = ByteBuffer.allocateDirect(PAGE);
        int frames = 200;
        Thread producer = new Thread(() -> {
            try {
                for (int i = 0; i < frames; i++) {
                    PagesBuilder builder = new PagesBuilder(out.channel().alloc(), 0);
                    for (int p = 0; p < 64; p++) {
                        builder.addPage((long) i * 64 + p, page);
                    }
                    out.sendWhenWritable(builder.build());
                    queued.incrementAndGet();
                }
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }, "test-producer");
        producer.start();
        // The receiver reads nothing: the kernel buffers fill, then the sender's own buffer, then it waits.
        await().atMost(Duration.ofSeconds(20)).until(() -> !out.isWritable() && producer.getState() == Thread.State.TIMED_WAITING);
        assertThat(queued.get()).isLessThan(frames);
        long pending = out.channel().unsafe().outboundBuffer().totalPendingWriteBytes();
        assertThat(pending).as("bytes the sender holds").isLessThanOrEqualTo(Limits.DEFAULT.writeBufferHigh() + Frame.Pages.MAX_PAYLOAD_BYTES + 16);

        destination.resumeReading();
        producer.join(TimeUnit.SECONDS.toMillis(60));
        assertThat(queued.get()).isEqualTo(frames);
        await().atMost(Duration.ofSeconds(20)).until(() -> session.destination().receivers.get(0).pages() == frames * 64L);
    }
}
