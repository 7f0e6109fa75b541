package dev.ferry.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The routing rule's counts: {@link PageRouting#pagesOf} in constant time agrees with the stretches it names. */
class PageRoutingTest {
    private static final long SEED = 0x0_2026_1201L;

    @Test
    void pagesOfCountsWhatForEachStretchVisits() {
        SplittableRandom random = new SplittableRandom(SEED);
        for (int round = 0; round < 2000; round++) {
            int channels = 1 + random.nextInt(16);
            int channel = random.nextInt(channels);
            long first = random.nextLong(1L << 24);
            long count = random.nextLong(1 + random.nextLong(1L << (1 + random.nextInt(20))));
            long[] visited = new long[1];
            long[] next = {-1};
            PageRouting.forEachStretch(first, count, channel, channels, (from, n) -> {
                assertThat(from).isGreaterThan(next[0]);
                assertThat(PageRouting.channelOf(from, channels)).isEqualTo(channel);
                assertThat(PageRouting.channelOf(from + n - 1, channels)).isEqualTo(channel);
                visited[0] += n;
                next[0] = from + n;
            });
            assertThat(PageRouting.pagesOf(first, count, channel, channels))
                    .as("round %d: [%d, +%d) on channel %d of %d", round, first, count, channel, channels).isEqualTo(visited[0]);
        }
        long all = 0;
        for (int channel = 0; channel < 3; channel++) {
            all += PageRouting.pagesOf(5, 1000, channel, 3);
        }
        assertThat(all).as("every page on exactly one channel").isEqualTo(1000);
    }
}
