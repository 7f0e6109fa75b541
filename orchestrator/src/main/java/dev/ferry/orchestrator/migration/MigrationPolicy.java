package dev.ferry.orchestrator.migration;

import dev.ferry.orchestrator.Refusal;
import dev.ferry.orchestrator.api.Requests;
import dev.ferry.orchestrator.config.Endpoint;
import dev.ferry.protocol.compression.PageCodec;

/**
 * A migration's settings: the request's, with defaults filled in.
 *
 * @param downtimeLimitMs            converge when the expected downtime fits this (F3)
 * @param maxBandwidthBytesPerSecond cap on every byte the migration sends per second (pages, device data, control;
 *                                   F13), 0 for none
 * @param channels                   data channels (1–16)
 * @param maxIterations              pre-copy passes before giving up with {@code timeout}
 * @param timeoutMs                  the whole migration's time before giving up with {@code timeout}
 * @param autoConverge               throttle the vCPUs while not converging: 20%, +10% per iteration, up to 99%
 * @param verify                     both sides digest the frozen VM; a mismatch fails before commit
 * @param dryRun                     only the handshake and the destination's compatibility check (F8); nothing moves
 * @param capture                    both sides write the session's frames to their capture directories (the destination
 *                                   when it has one); needs this daemon's {@code --capture-dir}
 * @param capturePages               with {@code capture}, PAGES frames with their page data, not only their entries
 * @param compression                how page data is compressed on the wire ({@code none}, {@code lz4}, {@code zstd})
 */
public record MigrationPolicy(String vm, Endpoint destination, long downtimeLimitMs, long maxBandwidthBytesPerSecond,
                              int channels, int maxIterations, long timeoutMs, boolean autoConverge, boolean verify,
                              boolean dryRun, boolean capture, boolean capturePages, PageCodec compression) {
    public static final long DEFAULT_DOWNTIME_LIMIT_MS = 300;
    public static final int DEFAULT_MAX_ITERATIONS = 30;
    public static final long DEFAULT_TIMEOUT_MS = 600_000;
    public static final int MAX_CHANNELS = 16;
    /**
     * The lowest limit: below it the session's own keepalives (two small frames a second on every
     * channel, which must not wait) would be a noticeable share of what may be sent.
     */
    public static final long MIN_BANDWIDTH_BYTES_PER_SECOND = 64 * 1024;

    public static MigrationPolicy from(Requests.StartMigration request) {
        if (request.vm() == null || request.vm().isBlank()) {
            throw Refusal.invalid("vm is required");
        }
        if (request.destination() == null) {
            throw Refusal.invalid("destination is required, as HOST:PORT of the destination's migration listener");
        }
        Endpoint destination;
        try {
            destination = Endpoint.parse(request.destination());
        } catch (IllegalArgumentException e) {
            throw Refusal.invalid("destination: " + e.getMessage());
        }
        if (destination.port() == 0) {
            throw Refusal.invalid("destination needs a port");
        }
        long downtime = or(request.downtimeLimitMs(), DEFAULT_DOWNTIME_LIMIT_MS);
        long bandwidth = or(request.maxBandwidthBytesPerSecond(), 0L);
        int channels = or(request.channels(), 1);
        int iterations = or(request.maxIterations(), DEFAULT_MAX_ITERATIONS);
        long timeout = or(request.timeoutMs(), DEFAULT_TIMEOUT_MS);
        check(downtime >= 1 && downtime <= 3_600_000, "downtimeLimitMs must be between 1 and 3600000");
        check(bandwidth == 0 || bandwidth >= MIN_BANDWIDTH_BYTES_PER_SECOND, "maxBandwidthBytesPerSecond must be 0 (unlimited) or at least "
                + MIN_BANDWIDTH_BYTES_PER_SECOND);
        check(channels >= 1 && channels <= MAX_CHANNELS, "channels must be between 1 and " + MAX_CHANNELS);
        check(iterations >= 1 && iterations <= 10_000, "maxIterations must be between 1 and 10000");
        check(timeout >= 100 && timeout <= 86_400_000, "timeoutMs must be between 100 and 86400000");
        boolean capture = or(request.capture(), false);
        boolean capturePages = or(request.capturePages(), false);
        check(capture || !capturePages, "capturePages needs capture");
        PageCodec compression;
        try {
            compression = PageCodec.of(or(request.compression(), PageCodec.NONE.label()));
        } catch (IllegalArgumentException e) {
            throw Refusal.invalid(e.getMessage());
        }
        return new MigrationPolicy(request.vm(), destination, downtime, bandwidth, channels, iterations, timeout,
                or(request.autoConverge(), true), or(request.verify(), false), or(request.dryRun(), false), capture, capturePages,
                compression);
    }

    /** Checks new settings for a running migration by the rules a new one's are checked by. */
    public static Migration.Parameters parameters(Long maxBandwidthBytesPerSecond, Long downtimeLimitMs) {
        if (maxBandwidthBytesPerSecond == null && downtimeLimitMs == null) {
            throw Refusal.invalid("give maxBandwidthBytesPerSecond, downtimeLimitMs, or both");
        }
        if (maxBandwidthBytesPerSecond != null) {
            long bandwidth = maxBandwidthBytesPerSecond;
            check(bandwidth == 0 || bandwidth >= MIN_BANDWIDTH_BYTES_PER_SECOND, "maxBandwidthBytesPerSecond must be 0 (unlimited)"
                    + " or at least " + MIN_BANDWIDTH_BYTES_PER_SECOND);
        }
        if (downtimeLimitMs != null) {
            check(downtimeLimitMs >= 1 && downtimeLimitMs <= 3_600_000, "downtimeLimitMs must be between 1 and 3600000");
        }
        return new Migration.Parameters(maxBandwidthBytesPerSecond, downtimeLimitMs);
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw Refusal.invalid(message);
        }
    }

    private static <T> T or(T value, T fallback) {
        return value != null ? value : fallback;
    }
}
