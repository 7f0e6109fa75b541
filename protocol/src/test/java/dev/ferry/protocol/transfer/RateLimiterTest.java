package dev.ferry.protocol.transfer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;

/** F13's limit over every byte, and F12: a sender waiting for credit leaves at once when interrupted. */
class RateLimiterTest {
    @Test
    void unlimitedNeverWaits() throws Exception {
        RateLimiter limiter = RateLimiter.unlimited();
        limiter.debit(1L << 40);
        limiter.awaitCredit();
    }

    @Test
    void debtAtTheLimitIsPaidBackInTime() throws Exception {
        RateLimiter limiter = new RateLimiter(10L << 20);
        long start = System.nanoTime();
        for (int i = 0; i < 8; i++) {
            limiter.acquire(256 << 10);
        }
        limiter.awaitCredit();
        // 2 MiB at 10 MiB/s is 200 ms, less the 50 ms burst.
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isGreaterThanOrEqualTo(140);
    }

    /** Two senders acquiring at once never run ahead together: each frame is counted as it is acquired. */
    @Test
    void sendersThatAcquireTogetherShareTheLimit() throws Exception {
        RateLimiter limiter = new RateLimiter(8L << 20);
        long start = System.nanoTime();
        CompletableFuture<Void> other = CompletableFuture.runAsync(() -> {
            try {
                for (int i = 0; i < 4; i++) {
                    limiter.acquire(256 << 10);
                }
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        for (int i = 0; i < 4; i++) {
            limiter.acquire(256 << 10);
        }
        other.get(5, TimeUnit.SECONDS);
        limiter.awaitCredit();
        // 2 MiB at 8 MiB/s is 250 ms, less the 50 ms burst.
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isGreaterThanOrEqualTo(190);
    }

    @Test
    void aWaitingSenderLeavesAtOnceWhenInterrupted() throws Exception {
        RateLimiter limiter = new RateLimiter(64 * 1024);
        limiter.debit(64L << 20);
        Thread[] waiter = new Thread[1];
        CompletableFuture<Throwable> waiting = CompletableFuture.supplyAsync(() -> {
            waiter[0] = Thread.currentThread();
            try {
                limiter.awaitCredit();
                return null;
            } catch (InterruptedException e) {
                return e;
            }
        });
        Awaitility.await().atMost(java.time.Duration.ofSeconds(5))
                .until(() -> waiter[0] != null && waiter[0].getState() == Thread.State.TIMED_WAITING);
        waiter[0].interrupt();
        assertThat(waiting.get(1, TimeUnit.SECONDS)).isInstanceOf(InterruptedException.class);
    }

    @Test
    void raisingTheLimitReleasesAWaitingSender() throws Exception {
        RateLimiter limiter = new RateLimiter(64 * 1024);
        limiter.debit(64L << 20);
        CompletableFuture<Void> waiting = CompletableFuture.runAsync(() -> {
            try {
                limiter.awaitCredit();
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        limiter.setRate(0);
        waiting.get(5, TimeUnit.SECONDS);
        assertThatThrownBy(() -> limiter.setRate(-1)).isInstanceOf(IllegalArgumentException.class);
    }
}
