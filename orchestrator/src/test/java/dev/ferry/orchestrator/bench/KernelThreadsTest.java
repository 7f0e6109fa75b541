package dev.ferry.orchestrator.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** The kernel threads' CPU the benchmark notes, as {@code /proc/<pid>/stat} gives it. */
class KernelThreadsTest {
    @Test
    void aStatLineGivesTheNameAndUserPlusSystemTicksEvenWithParenthesesInTheName() {
        KernelThreads.Entry kdamond = KernelThreads.parse(
                "78 (kdamond.0) I 2 0 0 0 -1 2129984 0 0 0 0 3120 4225 0 0 20 0 1 0 120 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 1 0 0 0 0 0");
        assertThat(kdamond).isEqualTo(new KernelThreads.Entry("kdamond.0", 7345));
        KernelThreads.Entry odd = KernelThreads.parse("4242 (a (b) c) S 1 4242 4242 0 -1 4194304 10 0 0 0 7 3 0 0 20 0 1 0 5 0 0");
        assertThat(odd).isEqualTo(new KernelThreads.Entry("a (b) c", 10));
        assertThat(KernelThreads.parse("garbage")).isNull();
        assertThat(KernelThreads.parse("1 (short) S 0 1")).isNull();
        assertThat(KernelThreads.parse("1 (odd) S 0 1 1 0 -1 0 0 0 0 0 x y 0 0")).as("fields that are not numbers").isNull();
    }

    @Test
    void whatEachThreadTookIsTheDifferenceAndThoseThatTookNothingAreLeftOut() {
        KernelThreads before = new KernelThreads(Map.of("kdamond.0", 7345L, "kswapd0", 12L));
        KernelThreads after = new KernelThreads(Map.of("kdamond.0", 7465L, "kswapd0", 12L, "kcompactd0", 3L));
        Map<String, Long> millis = before.millisUntil(after);
        assertThat(millis).containsExactly(Map.entry("kcompactd0", 30L), Map.entry("kdamond.0", 1200L));
        assertThat(KernelThreads.describe(millis, 6_000_000_000L)).isEqualTo("kcompactd0 0.03 s (1% of a core), kdamond.0 1.20 s (20% of a core)");
        assertThat(KernelThreads.describe(Map.of(), 1)).isEmpty();
    }

    @Test
    void aSampleOfThisMachineReadsWithoutFailing() {
        KernelThreads now = KernelThreads.sample();
        assertThat(now.millisUntil(now)).isEmpty();
    }
}
