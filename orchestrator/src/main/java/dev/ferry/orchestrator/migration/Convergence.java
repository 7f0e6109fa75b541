package dev.ferry.orchestrator.migration;

/**
 * F3: when pre-copy may stop. After each pass the source measures its bandwidth and estimates the
 * downtime stopping now would cost: what remains (dirty pages, device data not sent, device state
 * that only stop-and-copy sends) at the measured bandwidth, plus the measured fixed cost of S3–S6.
 * It stops iterating when that fits {@code downtimeLimitMs}; otherwise, with auto-converge, it
 * throttles what keeps it from fitting (F9): the vCPUs when the dirty pages are the larger part or would
 * not fit alone, the devices' own work when their data is the larger part; each 20%, then 10% more
 * each iteration, up to 99%.
 *
 * <p><b>(Ferry)</b> The fixed cost is measured, not configured: four all-device barriers (S3 and S5
 * on the source, R3 and R4 on the destination) each costing what the S2 barrier typically cost per
 * device (its median device, so that one device starting a large save session does not stand for
 * all, and without the time the flow's thread waited for a core: see {@link GraceBarrier.Timing#typicalWithout}),
 * plus two control-channel round trips (prepare and commit); or, when more, what the last switchovers to
 * the same destination cost beyond their data ({@link SwitchoverCosts}).
 */
final class Convergence {
    /**
     * What stopping now would cost (F9).
     *
     * @param memoryBytes     the dirty pages on the wire
     * @param deviceBytes     every device's predicted stop-and-copy data (W9)
     * @param deviceLoadNanos the time the destination would take to load that data, at each device's
     *                        measured rate
     * @param verifyNanos     the frozen-point digest, with verify
     * @param fixedNanos      the switchover's fixed cost: the barriers and round trips, or what past
     *                        switchovers to the destination cost beyond their data ({@link #switchoverCostNanos})
     */
    record Estimate(long memoryBytes, long deviceBytes, long deviceLoadNanos, long verifyNanos, long fixedNanos) {
        /** Whether the devices' part (their data and its loading) outweighs the memory's. */
        boolean devicesDominate() {
            return deviceBytes > memoryBytes || deviceLoadNanos > 0 && deviceBytes > 0 && memoryBytes == 0;
        }
    }

    private static final double WEIGHT = 0.5;
    private static final long MEANINGFUL_PASS_BYTES = 4L << 20;

    private final MigrationPolicy policy;
    private volatile long downtimeLimitMs;
    private double bandwidth;
    /** The bandwidth is only the floor a small pass gives (below), not a measurement. */
    private boolean provisional;
    /** The migration's rate limit now (0 for none): a provisional figure never exceeds it. */
    private volatile long rateLimit;
    private int throttle;
    private int deviceThrottle;

    Convergence(MigrationPolicy policy) {
        this.policy = policy;
        this.downtimeLimitMs = policy.downtimeLimitMs();
        this.rateLimit = policy.maxBandwidthBytesPerSecond();
    }

    /**
     * A pass moved {@code bytes} in {@code nanos}. A small pass says more about fixed latencies (the
     * iteration barrier's round trip) than about bandwidth: a few bytes in a few milliseconds would put
     * the link at kilobytes per second, and a VM with little but device state left (memory never written
     * goes as a few ZERO_PAGES frames) would never converge. So until a pass of {@value #MEANINGFUL_PASS_BYTES}
     * bytes or more is measured, a small one gives a provisional floor only, that the link moves at least
     * that many bytes in the time it took (capped by the migration's rate limit), and the first meaningful
     * measurement replaces it. The floor is a guess, so it estimates only what is no more than such a pass
     * would carry ({@link #expectedDowntimeMillis(long, long)}): the error it can make is bounded.
     */
    void measured(long bytes, long nanos) {
        if (nanos <= 0) {
            return;
        }
        if (bytes < MEANINGFUL_PASS_BYTES) {
            if (bandwidth == 0 || provisional) {
                double floor = MEANINGFUL_PASS_BYTES * 1e9 / nanos;
                long cap = rateLimit;
                bandwidth = Math.max(bandwidth, cap > 0 ? Math.min(floor, cap) : floor);
                provisional = true;
            }
            return;
        }
        double rate = bytes * 1e9 / nanos;
        bandwidth = bandwidth == 0 || provisional ? rate : WEIGHT * rate + (1 - WEIGHT) * bandwidth;
        provisional = false;
    }

    /** Bytes per second, as measured so far. */
    long bandwidth() {
        return (long) bandwidth;
    }

    /**
     * @param barrierNanos what one all-device barrier typically costs
     * @param rttNanos     the control channel's round trip
     */
    static long fixedCostNanos(long barrierNanos, long rttNanos) {
        return 4 * barrierNanos + 2 * Math.max(rttNanos, 0);
    }

    /**
     * The control round trip the switchover will cost: the quietest keepalive's ({@code keepaliveNanos}, -1
     * before the first), or the quickest pass that carried nothing ({@code emptyPassNanos},
     * {@link Long#MAX_VALUE} before one), whichever is less. Keepalives come once a second, and the first
     * ones of a migration are answered behind its first pass; an empty pass is ITERATION_END and
     * ITERATION_DONE on the control channel and so a round trip too, measured when it ends. Without it, a
     * VM with nothing left to send spun through its passes in milliseconds, all with the round trip of a
     * keepalive answered during a slow first pass, and could fail as not converging.
     */
    static long roundTripNanos(long keepaliveNanos, long emptyPassNanos) {
        long keepalive = keepaliveNanos < 0 ? Long.MAX_VALUE : keepaliveNanos;
        long quietest = Math.min(keepalive, emptyPassNanos);
        return quietest == Long.MAX_VALUE ? 0 : quietest;
    }

    /**
     * The fixed cost the estimate charges: its parts' ({@code partsNanos}: four barriers, two round trips)
     * or what the last switchovers to this destination cost beyond their data ({@code pastNanos}, see
     * {@link SwitchoverCosts}), whichever is more. A past figure counts only while it fits the limit alone:
     * one that does not would hold every migration to that destination above the limit, none would complete
     * to record a newer figure, and one slow switchover would shut that destination out for good. Such a
     * migration goes by the parts, and its downtime is measured and reported as it comes.
     */
    long switchoverCostNanos(long partsNanos, long pastNanos) {
        if (pastNanos <= partsNanos || !fits(expectedDowntimeMillis(0, pastNanos))) {
            return partsNanos;
        }
        return pastNanos;
    }

    /**
     * What a completed switchover cost beyond moving and loading its data: {@code downtimeNanos} less
     * {@code bytes} at the bandwidth measured, less the devices' load ({@code loadNanos}) and the digest
     * ({@code verifyNanos}) as the estimate charged them; -1 while the bandwidth is not measured.
     */
    long beyondData(long downtimeNanos, long bytes, long loadNanos, long verifyNanos) {
        if (bandwidth <= 0 || provisional) {
            return -1;
        }
        return Math.max(0, downtimeNanos - (long) (bytes * 1e9 / bandwidth) - loadNanos - verifyNanos);
    }

    /** F9: the downtime if pre-copy stopped now, all of it. */
    long expectedDowntimeMillis(Estimate estimate) {
        long transfer = expectedDowntimeMillis(estimate.memoryBytes() + estimate.deviceBytes(),
                estimate.deviceLoadNanos() + estimate.verifyNanos() + estimate.fixedNanos());
        return transfer;
    }

    /**
     * The downtime if pre-copy stopped now: {@code remainingBytes} to send and {@code fixedCostNanos} besides.
     * Unknown (never fitting) while nothing was measured, or when only a provisional floor was and more is
     * left than a small pass carries.
     */
    long expectedDowntimeMillis(long remainingBytes, long fixedCostNanos) {
        boolean unknown = bandwidth <= 0 || provisional && remainingBytes > MEANINGFUL_PASS_BYTES;
        double transfer = unknown ? (remainingBytes == 0 ? 0 : Double.MAX_VALUE) : remainingBytes * 1000.0 / bandwidth;
        return (long) Math.min(Long.MAX_VALUE / 2, Math.ceil(transfer + fixedCostNanos / 1e6));
    }

    boolean fits(long expectedDowntimeMillis) {
        return expectedDowntimeMillis <= downtimeLimitMs;
    }

    /** The rate limit changed while the migration runs (0 for none): a provisional floor stays within it. */
    void setRateLimit(long bytesPerSecond) {
        rateLimit = bytesPerSecond;
        if (provisional && bytesPerSecond > 0 && bandwidth > bytesPerSecond) {
            bandwidth = bytesPerSecond;
        }
    }

    /** The limit changed while the migration runs; the next convergence check uses it. */
    void setDowntimeLimitMs(long millis) {
        downtimeLimitMs = millis;
    }

    long downtimeLimitMs() {
        return downtimeLimitMs;
    }

    /** Whether the barriers and the switchover's round trips alone exceed the limit: no pass and no slowing shrink them. */
    boolean fixedCostAloneExceedsLimit(Estimate estimate) {
        return !fits(expectedDowntimeMillis(0, estimate.fixedNanos()));
    }

    /** What to slow after a pass that did not converge: the vCPUs and the devices' own work, in percent (0: not). */
    record Slowdown(int vcpus, int devices) {
        static final Slowdown NONE = new Slowdown(0, 0);
    }

    /**
     * F3, F9: auto-converge slows what keeps the estimate above the limit: the vCPUs when the dirty
     * pages are the larger part, or would not fit even alone; the devices' own work when their data is
     * the larger part. A guest whose vCPUs are not the cause is not slowed for the devices' sake. When
     * the fixed cost alone (the barriers and the switchover's round trips) exceeds the limit, nothing
     * is slowed: no slowing can shrink it, and a guest must not pay for a wait it cannot shorten. The
     * fixed cost is measured afresh each pass, so a passing spike in the round trip only skips a step.
     */
    Slowdown slowdown(Estimate estimate) {
        if (fixedCostAloneExceedsLimit(estimate)) {
            return Slowdown.NONE;
        }
        boolean memoryAlone = !fits(expectedDowntimeMillis(estimate.memoryBytes(), estimate.fixedNanos()));
        int vcpus = !estimate.devicesDominate() || memoryAlone ? nextThrottle() : 0;
        int devices = estimate.devicesDominate() ? nextDeviceThrottle() : 0;
        return new Slowdown(vcpus, devices);
    }

    /**
     * F9: the next slowdown of the devices' own work, when their data keeps the estimate above the limit:
     * the same schedule as the vCPUs', 0 without auto-converge.
     */
    int nextDeviceThrottle() {
        if (!policy.autoConverge()) {
            return 0;
        }
        deviceThrottle = deviceThrottle == 0 ? 20 : Math.min(99, deviceThrottle + 10);
        return deviceThrottle;
    }

    /** The next throttle after a pass that did not converge, or 0 without auto-converge. */
    int nextThrottle() {
        if (!policy.autoConverge()) {
            return 0;
        }
        throttle = throttle == 0 ? 20 : Math.min(99, throttle + 10);
        return throttle;
    }
}
