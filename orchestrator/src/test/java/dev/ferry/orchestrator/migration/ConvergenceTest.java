package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.orchestrator.config.Endpoint;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** F3: the convergence rule and the auto-converge schedule, on measured numbers. */
class ConvergenceTest {
    private static final long MIB = 1L << 20;

    private static Convergence convergence(long downtimeLimitMs, boolean autoConverge) {
        return new Convergence(new MigrationPolicy("vm", new Endpoint("127.0.0.1", 1), downtimeLimitMs, 0, 1, 30, 600_000,
                autoConverge, false, false, false, false, dev.ferry.protocol.compression.PageCodec.NONE));
    }

    @Test
    void f3ExpectedDowntimeIsWhatRemainsAtTheMeasuredBandwidthPlusTheFixedCost() {
        Convergence c = convergence(300, true);
        c.measured(100 * MIB, 1_000_000_000L);
        assertThat(c.bandwidth()).isEqualTo(100 * MIB);
        // 20 MiB at 100 MiB/s is 200 ms; four barriers of 5 ms and two round trips of 10 ms add 40 ms.
        long fixed = Convergence.fixedCostNanos(5_000_000, 10_000_000);
        assertThat(fixed).isEqualTo(40_000_000);
        long expected = c.expectedDowntimeMillis(20 * MIB, fixed);
        assertThat(expected).isEqualTo(240);
        assertThat(c.fits(expected)).isTrue();
        assertThat(c.fits(c.expectedDowntimeMillis(30 * MIB, fixed))).as("340 ms over a 300 ms limit").isFalse();
    }

    @Test
    void f9TheEstimateCoversTheDevicesTheirLoadTheDigestAndTheFixedCost() {
        Convergence c = convergence(300, true);
        c.measured(100 * MIB, 1_000_000_000L);
        // 10 MiB of pages and 5 MiB of predicted device data at 100 MiB/s: 150 ms; the destination loads the
        // device data in 30 ms, the frozen-point digest takes 8 ms, the barriers and round trips 40 ms.
        Convergence.Estimate estimate = new Convergence.Estimate(10 * MIB, 5 * MIB, 30_000_000, 8_000_000, 40_000_000);
        assertThat(c.expectedDowntimeMillis(estimate)).isEqualTo(150 + 30 + 8 + 40);
        assertThat(estimate.devicesDominate()).isFalse();
        assertThat(new Convergence.Estimate(MIB, 5 * MIB, 0, 0, 0).devicesDominate()).isTrue();
        assertThat(new Convergence.Estimate(0, 0, 0, 0, 0).devicesDominate()).isFalse();
    }

    @Test
    void f3TheFixedCostIsWhatPastSwitchoversPaidBeyondTheirDataWhenThatIsMore() {
        Convergence c = convergence(30, true);
        c.measured(100 * MIB, 1_000_000_000L);
        // A switchover of 20 ms downtime that moved 1 MiB (10 ms at 100 MiB/s) and loaded devices for 2 ms
        // and digested for 1 ms cost 7 ms beyond its data.
        assertThat(c.beyondData(20_000_000, MIB, 2_000_000, 1_000_000)).isEqualTo(7_000_000);
        assertThat(c.beyondData(5_000_000, MIB, 0, 0)).as("never less than nothing").isZero();
        // The parts (barriers and round trips) say 1 ms, past switchovers 7: the estimate charges 7.
        assertThat(c.switchoverCostNanos(1_000_000, 7_000_000)).isEqualTo(7_000_000);
        assertThat(c.switchoverCostNanos(9_000_000, 7_000_000)).as("the parts when they are more").isEqualTo(9_000_000);
        assertThat(c.switchoverCostNanos(1_000_000, 0)).as("no switchover to this destination yet").isEqualTo(1_000_000);
        // A past figure that alone exceeds the 30 ms limit would keep every migration there from converging,
        // and none would record a newer figure: the parts stand.
        assertThat(c.switchoverCostNanos(1_000_000, 31_000_000)).isEqualTo(1_000_000);
        assertThat(c.switchoverCostNanos(1_000_000, 30_000_000)).isEqualTo(30_000_000);
    }

    @Test
    void f3NoPastSwitchoverIsJudgedWithoutAMeasuredBandwidth() {
        Convergence c = convergence(300, true);
        assertThat(c.beyondData(20_000_000, MIB, 0, 0)).isEqualTo(-1);
        c.measured(MIB, 1_000_000_000L);
        assertThat(c.beyondData(20_000_000, MIB, 0, 0)).as("a small pass's floor is not a measurement").isEqualTo(-1);
    }

    @Test
    void f3SwitchoverCostsKeepTheQuietestOfTheLastEightPerDestination() {
        SwitchoverCosts costs = new SwitchoverCosts();
        assertThat(costs.quietest("10.0.0.1:7071")).isZero();
        // The first switchover of a fresh JVM is slow; it does not stand for all once quieter ones come.
        costs.record("10.0.0.1:7071", 150_000_000);
        assertThat(costs.quietest("10.0.0.1:7071")).isEqualTo(150_000_000);
        costs.record("10.0.0.1:7071", 12_000_000);
        costs.record("10.0.0.1:7071", 18_000_000);
        assertThat(costs.quietest("10.0.0.1:7071")).isEqualTo(12_000_000);
        assertThat(costs.quietest("10.0.0.2:7071")).as("another destination has its own").isZero();
        // Eight later, slower switchovers push the quiet one out: the figure follows the destination.
        for (int i = 0; i < SwitchoverCosts.KEPT; i++) {
            costs.record("10.0.0.1:7071", 20_000_000 + i);
        }
        assertThat(costs.quietest("10.0.0.1:7071")).isEqualTo(20_000_000);
        costs.forget("10.0.0.1:7071");
        assertThat(costs.quietest("10.0.0.1:7071")).as("forgotten after a migration that did not converge by them").isZero();
        costs.record("10.0.0.1:7071", 9_000_000);
        // At most DESTINATIONS are kept, the least recently used forgotten first.
        for (int i = 0; i < SwitchoverCosts.DESTINATIONS; i++) {
            costs.record("10.0.1." + i + ":7071", 1_000_000);
        }
        assertThat(costs.quietest("10.0.0.1:7071")).isZero();
        assertThat(costs.quietest("10.0.1.0:7071")).isEqualTo(1_000_000);
    }

    @Test
    void f9TheDevicesWorkIsSlowedOnTheVcpusScheduleOnlyWithAutoConverge() {
        Convergence c = convergence(300, true);
        List<Integer> schedule = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            schedule.add(c.nextDeviceThrottle());
        }
        assertThat(schedule).containsExactly(20, 30, 40, 50, 60, 70, 80, 90, 99, 99);
        assertThat(convergence(300, false).nextDeviceThrottle()).isZero();
    }

    @Test
    void f3NothingMeasuredYetFitsOnlyWhenNothingRemains() {
        Convergence c = convergence(300, true);
        assertThat(c.fits(c.expectedDowntimeMillis(0, 0))).isTrue();
        assertThat(c.fits(c.expectedDowntimeMillis(1, 0))).isFalse();
    }

    @Test
    void f3BandwidthIsAveragedAndASmallPassDoesNotOverrideALargeOne() {
        Convergence c = convergence(300, true);
        c.measured(100 * MIB, 1_000_000_000L);
        c.measured(300 * MIB, 1_000_000_000L);
        assertThat(c.bandwidth()).isEqualTo(200 * MIB);
        c.measured(MIB, 1_000_000_000L);
        assertThat(c.bandwidth()).as("a 1 MiB pass measures latency, not bandwidth").isEqualTo(200 * MIB);
    }

    @Test
    void f3ATinyFirstPassGivesAFloorNotAMeasurementAndTheFirstRealPassReplacesIt() {
        // A paused VM never written: its first pass is a few ZERO_PAGES frames, 44 bytes in 23 ms. Taken as a rate,
        // 320 KiB of device state left would take seconds, and the migration could never converge.
        Convergence c = convergence(300, true);
        c.measured(44, 23_000_000L);
        assertThat(c.bandwidth()).as("at least 4 MiB in the time the pass took").isEqualTo((long) (4 * MIB * 1e9 / 23_000_000L));
        assertThat(c.fits(c.expectedDowntimeMillis(320 * 1024, 2_000_000L))).isTrue();
        assertThat(c.fits(c.expectedDowntimeMillis(20 * MIB, 2_000_000L)))
                .as("a guess estimates no more than a small pass carries: 20 MiB over a slow link would miss the limit").isFalse();
        c.measured(50 * MIB, 1_000_000_000L);
        assertThat(c.bandwidth()).as("a real measurement replaces the floor, not averaged with it").isEqualTo(50 * MIB);
        c.measured(44, 1_000_000L);
        assertThat(c.bandwidth()).isEqualTo(50 * MIB);
    }

    @Test
    void f3TheSwitchoversRoundTripIsTheQuietestOfKeepalivesAndEmptyPasses() {
        // A keepalive answered behind a slow first pass: 150 ms; an empty pass since: 2 ms.
        assertThat(Convergence.roundTripNanos(150_000_000L, 2_000_000L)).isEqualTo(2_000_000L);
        assertThat(Convergence.roundTripNanos(300_000L, 2_000_000L)).isEqualTo(300_000L);
        assertThat(Convergence.roundTripNanos(-1, Long.MAX_VALUE)).as("nothing measured yet").isZero();
        assertThat(Convergence.roundTripNanos(-1, 2_000_000L)).isEqualTo(2_000_000L);
        assertThat(Convergence.roundTripNanos(150_000_000L, Long.MAX_VALUE)).isEqualTo(150_000_000L);
    }

    @Test
    void f3ATinyPassFloorStaysWithinTheRateLimit() {
        Convergence c = new Convergence(new MigrationPolicy("vm", new Endpoint("127.0.0.1", 1), 300, 1 << 20, 1, 30, 600_000,
                true, false, false, false, false, dev.ferry.protocol.compression.PageCodec.NONE));
        c.measured(44, 1_000_000L);
        assertThat(c.bandwidth()).isEqualTo(1 << 20);
        c.setRateLimit(256 * 1024);
        assertThat(c.bandwidth()).as("a limit lowered while it runs").isEqualTo(256 * 1024);
    }

    @Test
    void f3AutoConvergeThrottles20ThenTenMoreEachIterationUpTo99() {
        Convergence c = convergence(300, true);
        List<Integer> throttles = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            throttles.add(c.nextThrottle());
        }
        assertThat(throttles).containsExactly(20, 30, 40, 50, 60, 70, 80, 90, 99, 99);
        assertThat(convergence(300, false).nextThrottle()).as("without auto-converge").isZero();
    }

    @Test
    void f3F9AutoConvergeSlowsWhatKeepsTheEstimateAboveTheLimit() {
        Convergence c = convergence(300, true);
        c.measured(100 * MIB, 1_000_000_000L);
        // 50 MiB of dirty pages (500 ms) and 1 MiB of device data: the vCPUs are slowed, on their schedule.
        Convergence.Estimate memory = new Convergence.Estimate(50 * MIB, MIB, 0, 0, 10_000_000);
        assertThat(c.slowdown(memory)).isEqualTo(new Convergence.Slowdown(20, 0));
        assertThat(c.slowdown(memory)).isEqualTo(new Convergence.Slowdown(30, 0));
        // 40 MiB of device data and 5 MiB of pages that would fit alone: only the devices' own work.
        Convergence.Estimate devices = new Convergence.Estimate(5 * MIB, 40 * MIB, 0, 0, 10_000_000);
        assertThat(c.slowdown(devices)).isEqualTo(new Convergence.Slowdown(0, 20));
        // Devices the larger part, but the pages alone would not fit either: both.
        Convergence.Estimate both = new Convergence.Estimate(35 * MIB, 40 * MIB, 0, 0, 10_000_000);
        assertThat(c.slowdown(both)).isEqualTo(new Convergence.Slowdown(40, 30));
        Convergence manual = convergence(300, false);
        manual.measured(100 * MIB, 1_000_000_000L);
        assertThat(manual.slowdown(both)).as("without auto-converge").isEqualTo(Convergence.Slowdown.NONE);
    }

    @Test
    void f3NothingIsSlowedWhileTheFixedCostAloneExceedsTheLimit() {
        Convergence c = convergence(300, true);
        c.measured(100 * MIB, 1_000_000_000L);
        // Barriers and round trips of 320 ms: no slowing of the guest or its devices can shrink them.
        Convergence.Estimate far = new Convergence.Estimate(50 * MIB, 40 * MIB, 0, 0, 320_000_000);
        assertThat(c.slowdown(far)).isEqualTo(Convergence.Slowdown.NONE);
        assertThat(c.slowdown(far)).isEqualTo(Convergence.Slowdown.NONE);
        // The round trip falls back (it is measured every pass): the schedule starts where it stood.
        Convergence.Estimate near = new Convergence.Estimate(50 * MIB, MIB, 0, 0, 20_000_000);
        assertThat(c.slowdown(near)).isEqualTo(new Convergence.Slowdown(20, 0));
    }
}
