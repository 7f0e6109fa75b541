package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** What a grace step typically costs, as the convergence estimate takes it (F3, F9). */
class GraceBarrierTest {
    private static final long MS = 1_000_000L;

    @Test
    void theMedianDeviceStandsForEveryDeviceSoOneSlowDeviceDoesNotCountForAll() {
        // A save session starting on one device: 40 ms; the others 0.1 ms.
        assertThat(GraceBarrier.typical(new long[] {MS / 10, 40 * MS, MS / 10, MS / 10}, 41 * MS, 0)).isEqualTo(4 * (MS / 10));
        assertThat(GraceBarrier.typical(new long[0], 5 * MS, 0)).isZero();
    }

    @Test
    void f3TimeTheThreadWaitedForACoreIsTheHostsLoadNotTheSteps() {
        // A load of six on two cores: every device's change took about 22 ms, of which 21.5 waiting for a core.
        long[] starved = {22 * MS, 22 * MS, 22 * MS, 22 * MS};
        assertThat(GraceBarrier.typical(starved, 88 * MS, 86 * MS)).isEqualTo(2 * MS);
        assertThat(GraceBarrier.typical(starved, 88 * MS, 0)).as("where the kernel does not say").isEqualTo(88 * MS);
        assertThat(GraceBarrier.typical(starved, 88 * MS, 90 * MS)).isZero();
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
