package dev.ferry.protocol.transfer;

import java.util.concurrent.TimeUnit;

/**
 * A byte-rate limit over everything a session sends, 0 meaning unlimited.
 *
 * <p>Every byte a session sends is counted here, so the limit covers all of it (SPEC F13). Senders of
 * bulk data (pages, device data) {@linkplain #acquire acquire} each frame's bytes before they queue it:
 * they wait until what was sent before has drained at the limit's rate, to within a short burst, and
 * count the frame at once, so that several senders, or one that queues faster than its channel's event
 * loop encodes, never run ahead together. Small frames that must not wait (keepalives, control) are
 * {@linkplain #debit debited} as they are queued and delay the bulk data after them instead. The limit
 * may change at any time.
 *
 * <p>Waiting is interruptible: a cancelled migration's senders leave at once (SPEC F12).
 */
public final class RateLimiter {
    /** How far ahead of the limit a sender may run: one burst of this many nanoseconds' worth of bytes. */
    private static final long BURST_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    private volatile long bytesPerSecond;
    /** When the bytes debited so far will have drained at the limit: the time the next byte is due. */
    private long due = System.nanoTime();

    public RateLimiter(long bytesPerSecond) {
        setRate(bytesPerSecond);
    }

    public static RateLimiter unlimited() {
        return new RateLimiter(0);
    }

    public long bytesPerSecond() {
        return bytesPerSecond;
    }

    /** A new limit, 0 for none; applies to what is sent from now on. */
    public void setRate(long newBytesPerSecond) {
        if (newBytesPerSecond < 0) {
            throw new IllegalArgumentException("rate must not be negative: " + newBytesPerSecond);
        }
        synchronized (this) {
            bytesPerSecond = newBytesPerSecond;
            due = Math.min(due, System.nanoTime());
            notifyAll();
        }
    }

    /** Counts {@code bytes} as sent; never waits. */
    public void debit(long bytes) {
        long rate = bytesPerSecond;
        if (rate <= 0 || bytes <= 0) {
            return;
        }
        synchronized (this) {
            long now = System.nanoTime();
            due = Math.max(due, now - BURST_NANOS) + nanosFor(bytes, rate);
        }
    }

    /** Waits until the bytes counted so far are within one burst of the limit, then counts {@code bytes}. */
    public void acquire(long bytes) throws InterruptedException {
        synchronized (this) {
            awaitCredit();
            long rate = bytesPerSecond;
            if (rate > 0 && bytes > 0) {
                due = Math.max(due, System.nanoTime() - BURST_NANOS) + nanosFor(bytes, rate);
            }
        }
    }

    /** Waits until the bytes counted so far are within one burst of the limit. */
    public void awaitCredit() throws InterruptedException {
        synchronized (this) {
            while (true) {
                if (Thread.interrupted()) {
                    throw new InterruptedException("interrupted while rate limited");
                }
                if (bytesPerSecond <= 0) {
                    return;
                }
                long wait = due - System.nanoTime() - BURST_NANOS;
                if (wait <= 0) {
                    return;
                }
                // A change of the limit wakes the waiters; an interrupt does too.
                TimeUnit.NANOSECONDS.timedWait(this, wait);
            }
        }
    }

    private static long nanosFor(long bytes, long rate) {
        if (bytes > Long.MAX_VALUE / 1_000_000_000L) {
            return Long.MAX_VALUE / 4;
        }
        return bytes * 1_000_000_000L / rate;
    }
}
