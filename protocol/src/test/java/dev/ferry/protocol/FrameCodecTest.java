package dev.ferry.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.protocol.compression.FrameCompressor;
import dev.ferry.protocol.compression.PageCodec;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The frame codec on {@code EmbeddedChannel}s: every type, any fragmentation, and every kind of bad input. */
class FrameCodecTest {
    private static final long SEED = 0xF3_22_2026L;

    private List<Frame> samples;

    @BeforeEach
    void samples() {
        samples = SampleFrames.all(new SplittableRandom(SEED));
    }

    @AfterEach
    void release() {
        samples.forEach(SampleFrames::release);
    }

    /** Decodes {@code bytes} fed in the given chunk sizes; returns the frames, or the first failure's code. */
    private static Decoded decode(byte[] bytes, int[] chunks) {
        EmbeddedChannel channel = new EmbeddedChannel(new FrameDecoder());
        List<String> frames = new ArrayList<>();
        ProtocolException failure = null;
        int at = 0;
        try {
            for (int chunk : chunks) {
                if (at >= bytes.length) {
                    break;
                }
                int n = Math.min(chunk, bytes.length - at);
                channel.writeInbound(Unpooled.wrappedBuffer(bytes, at, n));
                at += n;
                drain(channel, frames);
            }
            if (at < bytes.length) {
                channel.writeInbound(Unpooled.wrappedBuffer(bytes, at, bytes.length - at));
                drain(channel, frames);
            }
            channel.finish();
            drain(channel, frames);
        } catch (FrameDecoder.FrameException e) {
            failure = e.protocolException();
            drain(channel, frames);
        }
        channel.finishAndReleaseAll();
        return new Decoded(frames, failure);
    }

    private record Decoded(List<String> frames, ProtocolException failure) {
    }

    private static void drain(EmbeddedChannel channel, List<String> frames) {
        Object msg;
        while ((msg = channel.readInbound()) != null) {
            frames.add(SampleFrames.describe((Frame) msg));
            SampleFrames.release(msg);
        }
    }

    private static int[] whole(int length) {
        return new int[] {length};
    }

    @Test
    void everyFrameTypeRoundTrips() {
        List<FrameType> covered = new ArrayList<>();
        for (Frame frame : samples) {
            covered.add(frame.type());
        }
        assertThat(covered).containsAll(Arrays.asList(FrameType.values()));

        byte[] bytes = SampleFrames.encode(samples);
        Decoded decoded = decode(bytes, whole(bytes.length));
        assertThat(decoded.failure()).isNull();
        assertThat(decoded.frames()).containsExactlyElementsOf(samples.stream().map(SampleFrames::describe).toList());
    }

    @Test
    void seededRandomFragmentationDecodesTheSameFrames() {
        byte[] bytes = SampleFrames.encode(samples);
        List<String> expected = samples.stream().map(SampleFrames::describe).toList();
        SplittableRandom random = new SplittableRandom(SEED);
        for (int round = 0; round < 120; round++) {
            int[] chunks = new int[bytes.length];
            int max = round == 0 ? 1 : round <= 20 ? 1 + random.nextInt(16) : 1 + random.nextInt(20_000);
            for (int i = 0; i < chunks.length; i++) {
                chunks[i] = 1 + random.nextInt(max);
            }
            Decoded decoded = decode(bytes, chunks);
            assertThat(decoded.failure()).as("round %d", round).isNull();
            assertThat(decoded.frames()).as("round %d", round).containsExactlyElementsOf(expected);
        }
    }

    @Test
    void everySingleBitFlipOfEveryFrameTypeIsDetected() {
        for (Frame frame : samples) {
            byte[] bytes = SampleFrames.encode(List.of(frame));
            List<Integer> undetected = new ArrayList<>();
            for (int bit = 0; bit < bytes.length * 8; bit++) {
                byte[] flipped = bytes.clone();
                flipped[bit / 8] ^= (byte) (1 << (bit % 8));
                Decoded decoded = decode(flipped, whole(flipped.length));
                boolean rejected = decoded.failure() != null && decoded.frames().isEmpty();
                // A page's bytes are covered by its own CRC: the frame arrives, and that page is torn.
                boolean torn = decoded.failure() == null && decoded.frames().size() == 1
                        && decoded.frames().get(0).split(":torn", -1).length == 2;
                if (!rejected && !torn) {
                    undetected.add(bit);
                }
            }
            assertThat(undetected).as("undetected bit flips in %s (%d bytes)", frame.type(), bytes.length).isEmpty();
        }
    }

    @Test
    void garbageIsRejectedAndNothingAfterItIsDelivered() {
        SplittableRandom random = new SplittableRandom(SEED);
        for (int round = 0; round < 500; round++) {
            byte[] garbage = SampleFrames.bytes(random, 16 + random.nextInt(4096));
            Decoded decoded = decode(garbage, whole(garbage.length));
            assertThat(decoded.frames()).isEmpty();
            assertThat(decoded.failure()).as("round %d", round).isNotNull();
        }
        // Valid frames after a bad one are discarded: nothing past the point of failure.
        byte[] valid = SampleFrames.encode(List.of(new Frame.Keepalive(1), new Frame.Keepalive(2)));
        byte[] bad = valid.clone();
        bad[4] = (byte) 0x7f;
        byte[] both = new byte[bad.length + valid.length];
        System.arraycopy(bad, 0, both, 0, bad.length);
        System.arraycopy(valid, 0, both, bad.length, valid.length);
        Decoded decoded = decode(both, whole(both.length));
        assertThat(decoded.failure().code()).isEqualTo(ErrorCode.UNKNOWN_TYPE);
        assertThat(decoded.frames()).isEmpty();
    }

    @Test
    void oversizeLengthFailsOnTheHeaderWithoutWaitingForThePayload() {
        ByteBuf header = Unpooled.buffer(FrameHeader.BYTES);
        header.writeInt(Integer.MAX_VALUE).writeByte(FrameType.PAGES.code()).writeByte(0).writeShort(0).writeInt(0).writeInt(0);
        EmbeddedChannel channel = new EmbeddedChannel(new FrameDecoder());
        assertThatThrownBy(() -> channel.writeInbound(header))
                .isInstanceOf(FrameDecoder.FrameException.class)
                .satisfies(e -> assertThat(((FrameDecoder.FrameException) e).protocolException().code()).isEqualTo(ErrorCode.OVERSIZE));
        channel.finishAndReleaseAll();

        // A type's own limit applies too: a KEEPALIVE carries exactly 8 bytes.
        ByteBuf keepalive = Unpooled.buffer(FrameHeader.BYTES);
        keepalive.writeInt(9).writeByte(FrameType.KEEPALIVE.code()).writeByte(0).writeShort(0).writeInt(0).writeInt(0);
        EmbeddedChannel other = new EmbeddedChannel(new FrameDecoder());
        assertThatThrownBy(() -> other.writeInbound(keepalive)).isInstanceOf(DecoderException.class);
        other.finishAndReleaseAll();
    }

    @Test
    void aTypeNotAllowedNowFailsOnTheHeaderWithoutWaitingForThePayload() {
        FrameDecoder decoder = new FrameDecoder();
        decoder.allowOnly(java.util.EnumSet.of(FrameType.HELLO));
        EmbeddedChannel channel = new EmbeddedChannel(decoder);
        ByteBuf header = Unpooled.buffer(FrameHeader.BYTES);
        header.writeInt(Frame.Pages.MAX_PAYLOAD_BYTES).writeByte(FrameType.PAGES.code()).writeByte(0).writeShort(0).writeInt(0)
                .writeInt(0);
        assertThatThrownBy(() -> channel.writeInbound(header))
                .isInstanceOf(FrameDecoder.FrameException.class)
                .satisfies(e -> {
                    ProtocolException cause = ((FrameDecoder.FrameException) e).protocolException();
                    assertThat(cause.code()).isEqualTo(ErrorCode.OUT_OF_ORDER);
                    assertThat(cause.getMessage()).contains("PAGES").contains("HELLO");
                });
        channel.finishAndReleaseAll();

        // Widened again, every type decodes.
        FrameDecoder widened = new FrameDecoder();
        widened.allowOnly(java.util.EnumSet.noneOf(FrameType.class));
        widened.allowAll();
        EmbeddedChannel other = new EmbeddedChannel(widened);
        other.writeInbound(Unpooled.wrappedBuffer(SampleFrames.encode(List.of(new Frame.Keepalive(7)))));
        assertThat(other.<Frame>readInbound()).isEqualTo(new Frame.Keepalive(7));
        other.finishAndReleaseAll();
    }

    @Test
    void truncatedInputFailsWhenTheConnectionCloses() {
        byte[] bytes = SampleFrames.encode(List.of(samples.get(19)));
        for (int length : new int[] {1, 15, 16, 17, bytes.length / 2, bytes.length - 1}) {
            Decoded decoded = decode(Arrays.copyOf(bytes, length), whole(length));
            assertThat(decoded.failure()).as("length %d", length).isNotNull();
            assertThat(decoded.failure().code()).isEqualTo(ErrorCode.TRUNCATED);
        }
    }

    @Test
    void slowInputByteByByteStillDecodes() {
        byte[] bytes = SampleFrames.encode(samples);
        int[] ones = new int[bytes.length];
        Arrays.fill(ones, 1);
        Decoded decoded = decode(bytes, ones);
        assertThat(decoded.failure()).isNull();
        assertThat(decoded.frames()).hasSize(samples.size());
    }

    @Test
    void framesOutOfSequenceAreRejected() {
        byte[] first = SampleFrames.encode(List.of(new Frame.Keepalive(1)));
        byte[] replayed = new byte[first.length * 2];
        System.arraycopy(first, 0, replayed, 0, first.length);
        System.arraycopy(first, 0, replayed, first.length, first.length);
        Decoded decoded = decode(replayed, whole(replayed.length));
        assertThat(decoded.frames()).hasSize(1);
        assertThat(decoded.failure().code()).isEqualTo(ErrorCode.OUT_OF_SEQUENCE);
    }

    @Test
    void pagesStructureIsChecked() {
        SplittableRandom random = new SplittableRandom(SEED);
        Frame.Pages pages = SampleFrames.pages(random, 0, 100, 2);
        byte[] bytes = SampleFrames.encode(List.of(pages));
        pages.release();
        // Claim one more page than the frame holds, and fix the CRC so only the structure is wrong.
        byte[] lying = bytes.clone();
        lying[FrameHeader.BYTES + 5] = 3;
        fixCrc(lying);
        Decoded decoded = decode(lying, whole(lying.length));
        assertThat(decoded.failure().code()).isEqualTo(ErrorCode.MALFORMED);
        assertThat(decoded.failure().getMessage()).contains("3 entries need");
    }

    @Test
    void aCompressedBlockThatIsCutShortOrNamesNoCodecIsMalformed() {
        for (PageCodec codec : new PageCodec[] {PageCodec.LZ4, PageCodec.ZSTD}) {
            Frame.CompressedPages frame = SampleFrames.compressedPages(new SplittableRandom(SEED), 1, 0, 10, codec);
            byte[] bytes = SampleFrames.encode(List.of(frame));
            frame.release();
            int meta = Frame.Pages.metaBytes(10);

            byte[] cut = Arrays.copyOf(bytes, bytes.length - 1);
            int length = cut.length - FrameHeader.BYTES;
            cut[0] = (byte) (length >>> 24);
            cut[1] = (byte) (length >>> 16);
            cut[2] = (byte) (length >>> 8);
            cut[3] = (byte) length;
            fixCrc(cut);
            Decoded decoded = decode(cut, whole(cut.length));
            assertThat(decoded.failure()).as("%s block cut short", codec).isNotNull();
            assertThat(decoded.failure().code()).isEqualTo(ErrorCode.MALFORMED);
            assertThat(decoded.failure().getMessage()).contains("does not decompress to its 28672 page bytes");

            byte[] unknown = bytes.clone();
            unknown[FrameHeader.BYTES + meta] = 9;
            fixCrc(unknown);
            decoded = decode(unknown, whole(unknown.length));
            assertThat(decoded.failure().code()).isEqualTo(ErrorCode.MALFORMED);
            assertThat(decoded.failure().getMessage()).contains("unknown codec 9");
            assertThat(decoded.frames()).isEmpty();
        }
    }

    @Test
    void aFrameTrickledAByteAtATimeHoldsAboutItsBytesNotAReadBufferPerByte() {
        // What a channel's reads hand the decoder: a 256 KiB buffer per read, each holding one byte of a HELLO.
        byte[] hello = SampleFrames.encode(List.of(samples.get(0)));
        io.netty.buffer.ByteBufAllocator alloc = io.netty.buffer.PooledByteBufAllocator.DEFAULT;
        ByteBuf cumulation = io.netty.buffer.Unpooled.EMPTY_BUFFER;
        for (byte b : hello) {
            ByteBuf read = alloc.directBuffer(256 << 10).writeByte(b);
            cumulation = FrameDecoder.COMPACT_COMPOSITE.cumulate(alloc, cumulation, read);
        }
        try {
            assertThat(io.netty.buffer.ByteBufUtil.getBytes(cumulation)).isEqualTo(hello);
            assertThat(cumulation.capacity()).as("%d bytes held in %d", hello.length, cumulation.capacity())
                    .isLessThan(64 * 1024);
        } finally {
            cumulation.release();
        }
        // A read that fills its buffer joins as it is, without a copy.
        ByteBuf full = alloc.directBuffer(4096, 4096).writeZero(4096);
        ByteBuf joined = FrameDecoder.COMPACT_COMPOSITE.cumulate(alloc, io.netty.buffer.Unpooled.EMPTY_BUFFER, full);
        try {
            assertThat(joined).isSameAs(full);
        } finally {
            joined.release();
        }
    }

    @Test
    void f11AfterChannelEndOnlyKeepalivesAndAbortMayCome() {
        SplittableRandom random = new SplittableRandom(SEED);
        Frame.Pages pages = SampleFrames.pages(random, 0, 0, 2);
        byte[] bytes = SampleFrames.encode(List.of(new Frame.ChannelEnd(0), new Frame.Keepalive(7), pages));
        pages.release();
        Decoded decoded = decode(bytes, whole(bytes.length));
        assertThat(decoded.frames()).hasSize(2);
        assertThat(decoded.failure().code()).as("a page after the channel's end is never placed").isEqualTo(ErrorCode.OUT_OF_ORDER);
        assertThat(decoded.failure().getMessage()).contains("PAGES frame where only");
    }

    @Test
    void pagesThatDoNotCompressGoAsTheyAre() {
        Frame.Pages random = SampleFrames.pages(new SplittableRandom(SEED), 0, 0, 9);
        try (FrameCompressor compressor = new FrameCompressor(PageCodec.ZSTD, io.netty.buffer.ByteBufAllocator.DEFAULT)) {
            Frame frame = compressor.compress(random, io.netty.buffer.ByteBufAllocator.DEFAULT);
            assertThat(frame).isSameAs(random);
            assertThat(compressor.pageBytes()).isZero();
        } finally {
            random.release();
        }
    }

    @Test
    void aVmDescriptionAsksForOneToSixteenDataChannels() {
        for (int channels : new int[] {0, 17, 1000, 65535}) {
            byte[] bytes = SampleFrames.encode(List.of(new Frame.VmDescription(1 << 20, 4096, channels, new byte[0])));
            Decoded decoded = decode(bytes, whole(bytes.length));
            assertThat(decoded.failure()).as("%d data channels", channels).isNotNull();
            assertThat(decoded.failure().code()).isEqualTo(ErrorCode.MALFORMED);
            assertThat(decoded.failure().getMessage()).contains("dataChannels " + channels + " outside [1, 16]");
        }
        for (int channels : new int[] {1, 16}) {
            byte[] bytes = SampleFrames.encode(List.of(new Frame.VmDescription(1 << 20, 4096, channels, new byte[0])));
            assertThat(decode(bytes, whole(bytes.length)).frames()).hasSize(1);
        }
    }

    /** Sets the frame's CRC right for what it covers: the whole payload, or a PAGES frame's meta. */
    private static void fixCrc(byte[] frame) {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(frame, 0, 12);
        int covered = frame.length - 16;
        if (frame[4] == FrameType.PAGES.code()) {
            covered = Math.min(covered, Frame.Pages.metaBytes(((frame[20] & 0xff) << 8) | (frame[21] & 0xff)));
        }
        crc.update(frame, 16, covered);
        int value = (int) crc.getValue();
        frame[12] = (byte) (value >>> 24);
        frame[13] = (byte) (value >>> 16);
        frame[14] = (byte) (value >>> 8);
        frame[15] = (byte) value;
    }

    @Test
    void encoderRefusesPayloadsOutsideTheTypeLimits() {
        EmbeddedChannel channel = new EmbeddedChannel(new FrameEncoder());
        assertThatThrownBy(() -> channel.writeOutbound(new Frame.VmDescription(1, 4096, 1, new byte[70_000])))
                .hasRootCauseInstanceOf(IllegalArgumentException.class);
        channel.finishAndReleaseAll();
    }
}
