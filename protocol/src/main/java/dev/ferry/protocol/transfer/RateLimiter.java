package dev.ferry.protocol.transfer;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/** A byte-rate limit shared by a session's senders; 0 means unlimited. */
public final class RateLimiter {
    private static final long BURST_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    private final long bytesPerSecond;
    private long next = System.nanoTime();

    public RateLimiter(long bytesPerSecond) {
        this.bytesPerSecond = bytesPerSecond;
    }

    public static RateLimiter unlimited() {
        return new RateLimiter(0);
    }

    /** Waits until {@code bytes} more may be sent. */
    public void acquire(long bytes) throws InterruptedException {
        if (bytesPerSecond <= 0) {
            return;
        }
        long wait;
        synchronized (this) {
            long now = System.nanoTime();
            next = Math.max(next, now - BURST_NANOS) + bytes * 1_000_000_000L / bytesPerSecond;
            wait = next - now - BURST_NANOS;
        }
        while (wait > 0) {
            long start = System.nanoTime();
            LockSupport.parkNanos(this, wait);
            if (Thread.interrupted()) {
                throw new InterruptedException("interrupted while rate limited");
            }
            wait -= System.nanoTime() - start;
        }
    }
}
