package dev.ferry.protocol.bench;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PagesBuilder;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.compression.PageCodec;
import io.netty.buffer.ByteBufAllocator;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The per-byte loops of the page data path, one frame of pages (64 pages, 256 KiB) per operation, each
 * beside the baseline it is judged against: a plain copy of the same bytes ({@link #copyFrame}).
 * <ul>
 *   <li>{@link #crc32cFrame}: the CRC32C of each page, which the sender takes as it adds a page and the
 *       destination as a page lands (Frame.Pages);</li>
 *   <li>{@link #buildFrame}: what the sender does per frame, {@link PagesBuilder#addRun} of 64 pages of memory
 *       (views, a CRC each) and the frame built and released;</li>
 *   <li>{@link #zeroTestFrame}: the sender's test of each page against zeros, which stops at the first
 *       byte that is not zero (so it costs only on zero pages and on pages that start with zeros);</li>
 *   <li>{@link #compressFrame} and {@link #decompressFrame}: the {@code compression} codecs on a frame's pages.</li>
 * </ul>
 * {@code content}: {@code random} (incompressible) or {@code mixed} (a third each of zero, text-like and random
 * pages, from a seed: the kinds of page {@code initialMemory: mixed} makes, in proportions of the benchmark's own).
 *
 * <pre>mvn -q -pl protocol -am test-compile exec:exec@jmh                      # every benchmark
 * mvn -q -pl protocol -am test-compile exec:exec@jmh -Djmh.args="crc32c|copy" # a selection (JMH's regexp)</pre>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx256m", "-Dio.netty.leakDetection.level=disabled"})
public class HotLoopsBenchmark {
    static final int PAGE = Frame.Pages.PAGE_SIZE;
    static final int PAGES = Frame.Pages.MAX_PAGES;
    static final int FRAME = PAGES * PAGE;
    private static final ByteBuffer ZERO_PAGE = ByteBuffer.allocateDirect(PAGE).asReadOnlyBuffer();
    private static final String[] WORDS = {"migration", "device", "page", "the", "of", "state", "RUNNING", "SAVING",
        "resume", "dirty", "log", "vfio", "channel", "frame", "guest", "memory", "\n", "{\"id\": ", "0x7f3a", " = "};

    /** A frame's worth of guest memory and somewhere to copy it. */
    @State(Scope.Thread)
    public static class Pages {
        @Param({"random", "mixed"})
        public String content;

        ByteBuffer memory;
        ByteBuffer target;
        final CRC32C crc = new CRC32C();

        @Setup(Level.Trial)
        public void setUp() {
            memory = ByteBuffer.allocateDirect(FRAME);
            fill(memory, content, 42);
            target = ByteBuffer.allocateDirect(FRAME);
        }
    }

    /** A codec, and the frame's pages compressed by it. */
    @State(Scope.Thread)
    public static class Codec {
        @Param({"lz4", "zstd"})
        public String codec;

        PageCodec.Compressor compressor;
        PageCodec.Decompressor decompressor;
        ByteBuffer compressed;
        int compressedLength;

        @Setup(Level.Trial)
        public void setUp(Pages pages) {
            PageCodec pageCodec = PageCodec.of(codec);
            compressor = pageCodec.compressor();
            decompressor = pageCodec.decompressor();
            compressed = ByteBuffer.allocateDirect(compressor.bound(FRAME));
            compressedLength = compressor.compress(pages.memory, 0, FRAME, compressed);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            compressor.close();
            decompressor.close();
        }
    }

    /** Pages of {@code content} from {@code seed}: see the class comment. */
    static void fill(ByteBuffer memory, String content, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        byte[] page = new byte[PAGE];
        for (int p = 0; p < memory.capacity() / PAGE; p++) {
            String kind = switch (content) {
                case "random" -> "random";
                case "mixed" -> new String[] {"zero", "text", "random"}[random.nextInt(3)];
                default -> throw new IllegalArgumentException("content " + content);
            };
            switch (kind) {
                case "random" -> random.nextBytes(page);
                case "text" -> {
                    int at = 0;
                    while (at < PAGE) {
                        byte[] word = (WORDS[random.nextInt(WORDS.length)] + ' ').getBytes(StandardCharsets.US_ASCII);
                        int n = Math.min(word.length, PAGE - at);
                        System.arraycopy(word, 0, page, at, n);
                        at += n;
                    }
                }
                default -> java.util.Arrays.fill(page, (byte) 0);
            }
            memory.put(p * PAGE, page);
        }
    }

    /** The baseline: the frame's bytes copied once, as a kernel copy into or out of a socket buffer does. */
    @Benchmark
    public ByteBuffer copyFrame(Pages pages) {
        pages.target.put(0, pages.memory, 0, FRAME);
        return pages.target;
    }

    @Benchmark
    public long crc32cFrame(Pages pages) {
        long sum = 0;
        for (int p = 0; p < PAGES; p++) {
            pages.crc.reset();
            pages.crc.update(pages.memory.duplicate().position(p * PAGE).limit((p + 1) * PAGE));
            sum += pages.crc.getValue();
        }
        return sum;
    }

    @Benchmark
    public int buildFrame(Pages pages) {
        PagesBuilder builder = new PagesBuilder(ByteBufAllocator.DEFAULT, 1);
        builder.addRun(0, PAGES, pages.memory.duplicate());
        Frame.Pages frame = builder.build();
        int count = frame.count();
        frame.release();
        return count;
    }

    @Benchmark
    public int zeroTestFrame(Pages pages) {
        int zero = 0;
        for (int p = 0; p < PAGES; p++) {
            if (pages.memory.slice(p * PAGE, PAGE).mismatch(ZERO_PAGE.duplicate()) == -1) {
                zero++;
            }
        }
        return zero;
    }

    @Benchmark
    public int compressFrame(Pages pages, Codec codec) {
        return codec.compressor.compress(pages.memory, 0, FRAME, codec.compressed.clear());
    }

    @Benchmark
    public ByteBuffer decompressFrame(Pages pages, Codec codec) throws ProtocolException {
        codec.decompressor.decompress(codec.compressed, 0, codec.compressedLength, pages.target.clear(), FRAME);
        return pages.target;
    }
}
