package dev.ferry.protocol.net;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameHeader;
import dev.ferry.protocol.PageRouting;
import dev.ferry.protocol.PagesBuilder;
import dev.ferry.protocol.transfer.PagePlacement;
import io.netty.channel.ChannelHandlerContext;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Page bytes read straight into their place: runs, scattered pages and zero pages land where their
 * entries say, checked there; a page changed after its CRC was taken is reported torn; a frame with a
 * page that has no place is read whole instead; device data and other frames pass as before.
 */
class PagePlacementTest {
    private static final int PAGE = Frame.Pages.PAGE_SIZE;
    private static final int PAGES = 1024;
    /** Pages 512 and up lie in a second piece of memory, so runs across 511/512 have no single place. */
    private static final int SPLIT = 512;
    /** Pages from here on have no place at all (as if not this receiver's to place). */
    private static final int UNPLACED = 1000;
    private static final long SEED = 0x9a6e;

    private LoopbackChannels loopback;
    private FrameChannel source;
    private FrameChannel destination;
    private final ByteBuffer low = ByteBuffer.allocateDirect(SPLIT * PAGE);
    private final ByteBuffer high = ByteBuffer.allocateDirect((PAGES - SPLIT) * PAGE);
    private final BlockingQueue<Frame> received = new LinkedBlockingQueue<>();
    private final AtomicInteger placedPages = new AtomicInteger();
    private final List<String> visits = new ArrayList<>();

    @BeforeEach
    void open() throws Exception {
        loopback = new LoopbackChannels();
        LoopbackChannels.Pair pair = loopback.open(ChannelRole.DATA, 0, null, (channel, frame) -> received.add(frame));
        source = pair.source();
        destination = pair.destination();
        // A keepalive exchange first: the channel has read before placement begins, as a data channel
        // that did its handshake has.
        dev.ferry.protocol.FrameDecoder decoder = destination.channel().pipeline().get(dev.ferry.protocol.FrameDecoder.class);
        long before = System.nanoTime();
        source.send(new Frame.Keepalive(7)).sync();
        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(10)).until(() -> decoder.lastReadNanos() > before);
        // On the channel's event loop, as a destination does when it accepts a channel: before any frame is read.
        destination.channel().eventLoop().submit(() -> install(destination)).sync();
    }

    private void install(FrameChannel destination) {
        destination.setPageRouting(new PageRouting(PAGES, 1, 0));
        destination.setPagePlacement(new PagePlacement() {
            @Override
            public ByteBuffer target(long first, int count) {
                if (first < SPLIT && first + count > SPLIT || first + count > UNPLACED) {
                    return null;
                }
                ByteBuffer memory = first < SPLIT ? low : high;
                long at = (first < SPLIT ? first : first - SPLIT) * PAGE;
                return memory.slice((int) at, count * PAGE);
            }

            @Override
            public void placed(long first, int count) {
                placedPages.addAndGet(count);
            }
        });
    }

    @AfterEach
    void close() {
        Frame frame;
        while ((frame = received.poll()) != null) {
            io.netty.util.ReferenceCountUtil.release(frame);
        }
        loopback.close();
    }

    private static ByteBuffer randomPage(SplittableRandom random) {
        byte[] bytes = new byte[PAGE];
        random.nextBytes(bytes);
        return ByteBuffer.allocateDirect(PAGE).put(bytes).flip();
    }

    private ByteBuffer landed(long page) {
        return page < SPLIT ? low.slice((int) page * PAGE, PAGE) : high.slice((int) (page - SPLIT) * PAGE, PAGE);
    }

    /** Takes the next frame and visits its pages, recording what each was. */
    private Frame.Pages next() throws InterruptedException {
        Frame frame = received.poll(30, TimeUnit.SECONDS);
        assertThat(frame).isInstanceOf(Frame.Pages.class);
        Frame.Pages pages = (Frame.Pages) frame;
        visits.clear();
        pages.forEach(new Frame.Pages.PageVisitor() {
            @Override
            public void zero(long index) {
                visits.add(index + ":zero");
            }

            @Override
            public void intact(long index, ByteBuffer data) {
                visits.add(index + (data == null ? ":placed" : ":data"));
            }

            @Override
            public void torn(long index) {
                visits.add(index + ":torn");
            }
        });
        return pages;
    }

    @Test
    void runsScatteredAndZeroPagesLandInPlaceAndAreChecked() throws Exception {
        SplittableRandom random = new SplittableRandom(SEED);
        ByteBuffer run = ByteBuffer.allocateDirect(8 * PAGE);
        for (int i = 0; i < 8; i++) {
            run.put(randomPage(random));
        }
        run.flip();
        ByteBuffer lone = randomPage(random);
        PagesBuilder builder = new PagesBuilder(source.channel().alloc(), 0)
                .addRun(100, 8, run)
                .addZero(200)
                .addPage(700, lone);
        source.send(builder.build()).sync();
        Frame.Pages pages = next();
        try {
            assertThat(pages.placed()).isTrue();
            assertThat(visits).containsExactly("100:placed", "101:placed", "102:placed", "103:placed", "104:placed",
                    "105:placed", "106:placed", "107:placed", "200:zero", "700:placed");
            for (int i = 0; i < 8; i++) {
                assertThat(landed(100 + i).mismatch(run.slice(i * PAGE, PAGE))).isEqualTo(-1);
            }
            assertThat(landed(700).mismatch(lone.duplicate())).isEqualTo(-1);
            assertThat(placedPages.get()).isEqualTo(9);
        } finally {
            pages.release();
        }
    }

    /**
     * A last pass's frames: 64 pages that lie apart, one of them changed after its checksum was taken (torn:
     * landed, failed its check, never applied; F11 builds a VM only from intact pages). On a
     * transport whose socket the decoder can reach (epoll), their bytes land in scatter reads, each taking
     * many of a frame's pages at once, not one read a page; everywhere they land and are checked the same.
     */
    @Test
    void scatteredPagesLandInScatterReadsAndAreChecked() throws Exception {
        int frames = 4;
        long[] counts = sendScatteredFramesAndCheckThem(frames);
        long pageBytes = (long) frames * Frame.Pages.MAX_PAGES * PAGE;
        org.junit.jupiter.api.Assumptions.assumeTrue(destination.channel() instanceof io.netty.channel.epoll.EpollSocketChannel,
                "scatter reads need the epoll transport");
        assertThat(counts[1]).as("page bytes read by scatter reads").isGreaterThan(pageBytes / 2);
        assertThat(counts[0]).as("scatter reads, against %d pages", frames * Frame.Pages.MAX_PAGES)
                .isPositive().isLessThan(frames * Frame.Pages.MAX_PAGES / 4);
    }

    /**
     * The same frames where the decoder is not the pipeline's first handler (a capture tap or TLS would be
     * there): a scatter read would take bytes past that handler, so none is made, and the pages land by the
     * channel's own reads, a run at a time, as on a transport without scatter reads. Each lands and is
     * checked the same, the torn one torn.
     */
    @Test
    void withAHandlerBeforeTheDecoderScatteredPagesLandByTheChannelsOwnReads() throws Exception {
        destination.channel().eventLoop().submit(() -> destination.channel().pipeline()
                .addFirst("before-the-decoder", new io.netty.channel.ChannelInboundHandlerAdapter())).sync();
        int frames = 4;
        long[] counts = sendScatteredFramesAndCheckThem(frames);
        assertThat(counts[0]).as("scatter reads").isZero();
        assertThat(counts[1]).as("page bytes read by scatter reads").isZero();
        assertThat(counts[2]).as("page bytes read into place").isEqualTo((long) frames * Frame.Pages.MAX_PAGES * PAGE);
    }

    /**
     * Sends {@code frames} frames of 64 pages that lie apart, the 8th page of the third torn, and checks that
     * every page landed as sent and was reported intact or torn; returns the decoder's scatter reads, their
     * bytes, the page bytes read into place and those copied there.
     */
    private long[] sendScatteredFramesAndCheckThem(int frames) throws Exception {
        SplittableRandom random = new SplittableRandom(SEED + 5);
        ByteBuffer[] sent = new ByteBuffer[frames * Frame.Pages.MAX_PAGES];
        for (int f = 0; f < frames; f++) {
            PagesBuilder builder = new PagesBuilder(source.channel().alloc(), 0);
            for (int i = 0; i < Frame.Pages.MAX_PAGES; i++) {
                int n = f * Frame.Pages.MAX_PAGES + i;
                sent[n] = randomPage(random);
                builder.addPage(2L * n, sent[n]);
            }
            Frame.Pages frame = builder.build();
            if (f == 2) {
                // The 8th page of the third frame, written between its checksum and the send.
                sent[2 * Frame.Pages.MAX_PAGES + 7].put(99, (byte) ~sent[2 * Frame.Pages.MAX_PAGES + 7].get(99));
            }
            source.send(frame);
        }
        source.send(new Frame.Keepalive(1)).sync();
        for (int f = 0; f < frames; f++) {
            Frame.Pages pages = next();
            try {
                assertThat(pages.placed()).isTrue();
                for (int i = 0; i < Frame.Pages.MAX_PAGES; i++) {
                    int n = f * Frame.Pages.MAX_PAGES + i;
                    assertThat(visits.get(i)).isEqualTo(2L * n + (f == 2 && i == 7 ? ":torn" : ":placed"));
                    assertThat(landed(2L * n).mismatch(sent[n].duplicate())).as("page %d landed as sent", 2L * n).isEqualTo(-1);
                }
            } finally {
                pages.release();
            }
        }
        long[] counts = destination.channel().eventLoop().submit(() -> {
            dev.ferry.protocol.FrameDecoder decoder = destination.channel().pipeline().get(dev.ferry.protocol.FrameDecoder.class);
            return new long[] {decoder.scatterReads(), decoder.scatteredBytes(), decoder.placedBytes(), decoder.copiedPageBytes()};
        }).get();
        long pageBytes = (long) frames * Frame.Pages.MAX_PAGES * PAGE;
        assertThat(counts[2] + counts[3]).as("every page byte read into place or copied there").isEqualTo(pageBytes);
        return counts;
    }

    /**
     * A frame of pages that lie apart whose bytes reach the destination in two parts, the first ending inside
     * a page: the first scatter read takes what is there and stops mid-page, the rest lands when it comes, and
     * every page is where it belongs and intact.
     */
    @Test
    void aFrameOfScatteredPagesArrivingInTwoPartsLandsWhole() throws Exception {
        SplittableRandom random = new SplittableRandom(SEED + 6);
        PagesBuilder builder = new PagesBuilder(source.channel().alloc(), 0);
        ByteBuffer[] sent = new ByteBuffer[Frame.Pages.MAX_PAGES];
        for (int i = 0; i < sent.length; i++) {
            sent[i] = randomPage(random);
            builder.addPage(3L * i + 1, sent[i]);
        }
        // The frame's first bytes, up to 100 bytes into its 11th page, go at once; the rest when released.
        long firstPart = FrameHeader.BYTES + Frame.Pages.PREFIX_BYTES + (long) Frame.Pages.ENTRY_BYTES * sent.length + 10L * PAGE + 100;
        WriteGate gate = new WriteGate(firstPart);
        source.channel().pipeline().addFirst(gate);
        source.send(builder.build());
        dev.ferry.protocol.FrameDecoder decoder = destination.channel().pipeline().get(dev.ferry.protocol.FrameDecoder.class);
        long scatterBefore;
        try {
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(10)).until(() -> destination.channel().eventLoop()
                    .submit(() -> decoder.placedBytes() + decoder.copiedPageBytes()).get() == 10L * PAGE + 100);
            scatterBefore = destination.channel().eventLoop().submit(decoder::scatterReads).get();
            assertThat(received).as("no frame before all of its bytes are in").isEmpty();
        } finally {
            // Held bytes go out either way: a failed wait must not leave the frame's buffers unreleased.
            source.channel().eventLoop().submit(gate::release).sync();
        }
        Frame.Pages pages = next();
        try {
            for (int i = 0; i < sent.length; i++) {
                assertThat(visits.get(i)).isEqualTo((3L * i + 1) + ":placed");
                assertThat(landed(3L * i + 1).mismatch(sent[i].duplicate())).as("page %d", 3L * i + 1).isEqualTo(-1);
            }
        } finally {
            pages.release();
        }
        org.junit.jupiter.api.Assumptions.assumeTrue(destination.channel() instanceof io.netty.channel.epoll.EpollSocketChannel,
                "scatter reads need the epoll transport");
        long scatterAfter = destination.channel().eventLoop().submit(decoder::scatterReads).get();
        assertThat(scatterBefore).as("scatter reads of the first part").isPositive();
        assertThat(scatterAfter).as("scatter reads of both parts").isGreaterThan(scatterBefore);
    }

    /**
     * Next to the socket: lets the first {@code open} bytes written pass and holds the rest until released
     * (on the channel's event loop), so that a frame reaches the peer in two parts.
     */
    private static final class WriteGate extends io.netty.channel.ChannelOutboundHandlerAdapter {
        private long open;
        private final List<Object[]> held = new ArrayList<>();
        private ChannelHandlerContext context;
        private boolean released;

        WriteGate(long open) {
            this.open = open;
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, io.netty.channel.ChannelPromise promise) {
            context = ctx;
            if (released || !(msg instanceof io.netty.buffer.ByteBuf buf)) {
                ctx.write(msg, promise);
                return;
            }
            if (open >= buf.readableBytes()) {
                open -= buf.readableBytes();
                ctx.write(msg, promise);
                return;
            }
            if (open > 0) {
                ctx.write(buf.readRetainedSlice((int) open));
                open = 0;
            }
            held.add(new Object[] {buf, promise});
        }

        void release() {
            released = true;
            for (Object[] write : held) {
                context.write(write[0], (io.netty.channel.ChannelPromise) write[1]);
            }
            held.clear();
            context.flush();
        }
    }

    @Test
    void aPageChangedAfterItsChecksumWasTakenIsReportedTorn() throws Exception {
        SplittableRandom random = new SplittableRandom(SEED + 1);
        ByteBuffer first = randomPage(random);
        ByteBuffer second = randomPage(random);
        Frame.Pages frame = new PagesBuilder(source.channel().alloc(), 0).addPage(10, first).addPage(11, second).build();
        // A guest's write between the checksum and the send.
        second.put(17, (byte) (second.get(17) ^ 0x40));
        source.send(frame).sync();
        Frame.Pages pages = next();
        try {
            assertThat(visits).containsExactly("10:placed", "11:torn");
            assertThat(landed(11).mismatch(second.duplicate())).as("what was sent is what landed").isEqualTo(-1);
        } finally {
            pages.release();
        }
    }

    @Test
    void aRunThatDoesNotLieInOnePieceIsPlacedPageByPage() throws Exception {
        SplittableRandom random = new SplittableRandom(SEED + 2);
        ByteBuffer across = ByteBuffer.allocateDirect(2 * PAGE).put(randomPage(random)).put(randomPage(random)).flip();
        // Pages 511 and 512 lie in two pieces: each goes to its own place, page by page.
        source.send(new PagesBuilder(source.channel().alloc(), 0).addRun(SPLIT - 1, 2, across).build()).sync();
        Frame.Pages pages = next();
        try {
            assertThat(pages.placed()).isTrue();
            assertThat(visits).containsExactly((SPLIT - 1) + ":placed", SPLIT + ":placed");
            assertThat(landed(SPLIT).mismatch(across.slice(PAGE, PAGE))).isEqualTo(-1);
        } finally {
            pages.release();
        }
    }

    @Test
    void aFrameWithAPageThatHasNoPlaceIsReadWholeAndStillChecked() throws Exception {
        SplittableRandom random = new SplittableRandom(SEED + 4);
        ByteBuffer page = randomPage(random);
        ByteBuffer other = randomPage(random);
        Frame.Pages frame = new PagesBuilder(source.channel().alloc(), 0).addPage(5, page).addPage(UNPLACED, other).build();
        other.put(0, (byte) ~other.get(0));
        source.send(frame).sync();
        Frame.Pages pages = next();
        try {
            assertThat(pages.placed()).isFalse();
            assertThat(visits).containsExactly("5:data", UNPLACED + ":torn");
            assertThat(placedPages.get()).isZero();
        } finally {
            pages.release();
        }
    }

    @Test
    void manyFramesOfEveryShapeInterleavedWithOtherFramesArriveInOrder() throws Exception {
        SplittableRandom random = new SplittableRandom(SEED + 3);
        ByteBuffer memory = ByteBuffer.allocateDirect(PAGES * PAGE);
        for (int page = 0; page < PAGES; page++) {
            memory.put(randomPage(random));
        }
        memory.flip();
        int frames = 0;
        for (int first = 0; first + Frame.Pages.MAX_PAGES <= UNPLACED; first += Frame.Pages.MAX_PAGES) {
            PagesBuilder builder = new PagesBuilder(source.channel().alloc(), 0);
            for (int page = first; page < first + Frame.Pages.MAX_PAGES; page++) {
                if (random.nextInt(5) == 0) {
                    builder.addZero(page);
                } else {
                    builder.addPage(page, memory.slice(page * PAGE, PAGE));
                }
            }
            source.send(builder.build());
            source.send(new Frame.DeviceData(0, first * 100L, io.netty.buffer.Unpooled.wrappedBuffer(new byte[1 + random.nextInt(9000)])));
            frames++;
        }
        source.send(new Frame.DataEnd(0, frames * Frame.Pages.MAX_PAGES)).sync();
        long[] counts = destination.channel().eventLoop().submit(() -> {
            dev.ferry.protocol.FrameDecoder decoder = destination.channel().pipeline().get(dev.ferry.protocol.FrameDecoder.class);
            return new long[] {decoder.placedBytes(), decoder.copiedPageBytes()};
        }).get();
        for (int i = 0; i < frames; i++) {
            Frame.Pages pages = next();
            try {
                assertThat(pages.placed()).isTrue();
                assertThat(visits).noneMatch(visit -> visit.endsWith(":torn") || visit.endsWith(":data"));
                for (String visit : visits) {
                    if (visit.endsWith(":placed")) {
                        int page = Integer.parseInt(visit.substring(0, visit.indexOf(':')));
                        assertThat(landed(page).mismatch(memory.slice(page * PAGE, PAGE))).as("page %d", page).isEqualTo(-1);
                    }
                }
            } finally {
                pages.release();
            }
            Frame data = received.poll(30, TimeUnit.SECONDS);
            assertThat(data).isInstanceOf(Frame.DeviceData.class);
            io.netty.util.ReferenceCountUtil.release(data);
        }
        assertThat(received.poll(30, TimeUnit.SECONDS)).isEqualTo(new Frame.DataEnd(0, frames * Frame.Pages.MAX_PAGES));
        // Almost every page byte was read straight into place; only what came with a meta was copied.
        assertThat(counts[0]).as("placed bytes").isGreaterThan(10 * counts[1]);
    }
}
