package dev.ferry.protocol.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * The microbenchmark measures what it says: each benchmark method, run once on the states JMH would make, does
 * its work on the frame it was given; and JMH's annotation processor registered every one of them.
 */
class HotLoopsBenchmarkTest {
    @Test
    void everyBenchmarkDoesItsWorkOnTheFrame() throws Exception {
        for (String content : new String[] {"random", "mixed"}) {
            HotLoopsBenchmark.Pages pages = new HotLoopsBenchmark.Pages();
            pages.content = content;
            pages.setUp();
            HotLoopsBenchmark bench = new HotLoopsBenchmark();

            assertThat(bench.copyFrame(pages).mismatch(pages.memory)).as("copied").isEqualTo(-1);
            assertThat(bench.crc32cFrame(pages)).isEqualTo(bench.crc32cFrame(pages)).isNotZero();
            assertThat(bench.buildFrame(pages)).isEqualTo(HotLoopsBenchmark.PAGES);
            int zero = bench.zeroTestFrame(pages);
            if (content.equals("random")) {
                assertThat(zero).isZero();
            } else {
                assertThat(zero).as("about a third of mixed pages are zero").isBetween(10, 40);
            }
            for (String codec : new String[] {"lz4", "zstd"}) {
                HotLoopsBenchmark.Codec codecState = new HotLoopsBenchmark.Codec();
                codecState.codec = codec;
                codecState.setUp(pages);
                try {
                    int compressed = bench.compressFrame(pages, codecState);
                    assertThat(compressed).isEqualTo(codecState.compressedLength);
                    if (content.equals("mixed")) {
                        assertThat(compressed).as("%s on mixed pages", codec).isLessThan(HotLoopsBenchmark.FRAME / 2);
                    }
                    pages.target.clear();
                    ByteBuffer out = bench.decompressFrame(pages, codecState);
                    assertThat(out.clear().mismatch(pages.memory)).as("%s round trip", codec).isEqualTo(-1);
                } finally {
                    codecState.tearDown();
                }
            }
        }
    }

    @Test
    void jmhKnowsEveryBenchmark() throws IOException {
        try (InputStream list = getClass().getResourceAsStream("/META-INF/BenchmarkList")) {
            assertThat(list).as("JMH's annotation processor ran").isNotNull();
            String benchmarks = new String(list.readAllBytes(), StandardCharsets.UTF_8);
            for (String name : new String[] {"copyFrame", "crc32cFrame", "buildFrame", "zeroTestFrame", "compressFrame",
                "decompressFrame"}) {
                assertThat(benchmarks).contains("HotLoopsBenchmark_" + name + "_jmhTest");
            }
        }
    }
}
