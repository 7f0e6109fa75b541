package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** What a grace step typically costs, as the convergence estimate takes it (F3, F9). */
class GraceBarrierTest {
    private static final long MS = 1_000_000L;

    @Test
    void f3TimeTheThreadWaitedForACoreIsTheHostsLoadNotTheSteps() {
        // A load of six on two cores: every device's change took about 22 ms, of which 21.5 waiting for a core.
        GraceBarrier.Timing starved = new GraceBarrier.Timing(88 * MS, 88 * MS, new long[] {22 * MS, 22 * MS, 22 * MS, 22 * MS});
        assertThat(starved.typicalWithout(86 * MS)).isEqualTo(2 * MS);
        assertThat(starved.typicalWithout(0)).as("where the kernel does not say").isEqualTo(88 * MS);
        assertThat(starved.typicalWithout(90 * MS)).isZero();
        // A save session starting on one device: the median stands, the wait is small.
        GraceBarrier.Timing oneSlow = new GraceBarrier.Timing(41 * MS, 4 * (MS / 10), new long[] {MS / 10, 40 * MS, MS / 10, MS / 10});
        assertThat(oneSlow.typicalWithout(MS)).isEqualTo(4 * (MS / 10));
    }

    @Test
    void theRunQueueWaitIsTheSecondFieldOfSchedstat() {
        assertThat(RunQueueWait.parse("4484765 1408580 2\n")).isEqualTo(1408580);
        assertThat(RunQueueWait.parse("")).isZero();
        assertThat(RunQueueWait.parse("12 x 3")).isZero();
        long before = RunQueueWait.nanos();
        assertThat(before).isNotNegative();
        assertThat(RunQueueWait.nanos()).isGreaterThanOrEqualTo(before);
    }
}
