package dev.ferry.protocol.net;

import java.time.Duration;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * Log lines that a peer can cause by itself, such as one per refused connection: at most {@code limit}
 * lines per interval, so that anyone who can reach a port cannot fill the daemon's log or spend its time
 * writing one. Lines over the limit are counted, not built; the next line written says how many were
 * left out since the one before it (so the count appears once the peer stops or the interval turns).
 *
 * <p>Thread-safe: listeners on several event loops share one. The sink runs outside the lock, so a
 * slow log device holds up only the thread that writes.
 */
public final class RateLimitedLog {
    /** Lines per interval by default: enough to see who is refused and why. */
    public static final int DEFAULT_LIMIT = 10;
    public static final Duration DEFAULT_INTERVAL = Duration.ofSeconds(10);

    private final Consumer<String> sink;
    private final int limit;
    private final long intervalNanos;
    private final LongSupplier nanoClock;
    private long windowStart;
    private int writtenInWindow;
    private long suppressed;
    private long suppressedTotal;

    public RateLimitedLog(Consumer<String> sink, int limit, Duration interval) {
        this(sink, limit, interval, System::nanoTime);
    }

    /** With a clock of its own, in nanoseconds, for tests. */
    public RateLimitedLog(Consumer<String> sink, int limit, Duration interval, LongSupplier nanoClock) {
        if (limit < 1 || interval.isNegative() || interval.isZero()) {
            throw new IllegalArgumentException("a rate-limited log writes at least one line per positive interval");
        }
        this.sink = Objects.requireNonNull(sink);
        this.limit = limit;
        this.intervalNanos = interval.toNanos();
        this.nanoClock = nanoClock;
        this.windowStart = nanoClock.getAsLong();
    }

    /** The default limits, written to a platform logger at {@code level}. */
    public static RateLimitedLog of(System.Logger logger, System.Logger.Level level) {
        return new RateLimitedLog(line -> logger.log(level, line), DEFAULT_LIMIT, DEFAULT_INTERVAL);
    }

    /** Writes the line, unless this interval's lines are used up; {@code line} is called only if it is written. */
    public void log(Supplier<String> line) {
        long skipped;
        synchronized (this) {
            long now = nanoClock.getAsLong();
            if (now - windowStart >= intervalNanos) {
                windowStart = now;
                writtenInWindow = 0;
            }
            if (writtenInWindow >= limit) {
                suppressed++;
                suppressedTotal++;
                return;
            }
            writtenInWindow++;
            skipped = suppressed;
            suppressed = 0;
        }
        String text = line.get();
        sink.accept(skipped == 0 ? text : text + " (" + skipped + " similar " + (skipped == 1 ? "line" : "lines")
                + " not logged before this one)");
    }

    /** Lines left out since this log was made. */
    public synchronized long suppressedTotal() {
        return suppressedTotal;
    }
}
