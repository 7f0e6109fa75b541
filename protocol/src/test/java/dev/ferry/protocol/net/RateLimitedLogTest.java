package dev.ferry.protocol.net;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** At most so many lines per interval, with a count of the ones left out; on a clock the test turns. */
class RateLimitedLogTest {
    private final AtomicLong now = new AtomicLong(1_000);
    private final List<String> lines = new ArrayList<>();
    private final RateLimitedLog log = new RateLimitedLog(lines::add, 3, Duration.ofSeconds(10), now::get);

    @Test
    void writesTheFirstLinesOfAnIntervalAndCountsTheRest() {
        AtomicInteger built = new AtomicInteger();
        for (int i = 0; i < 1000; i++) {
            int n = i;
            log.log(() -> {
                built.incrementAndGet();
                return "refused " + n;
            });
        }
        assertThat(lines).containsExactly("refused 0", "refused 1", "refused 2");
        assertThat(built.get()).as("lines left out are never built").isEqualTo(3);
        assertThat(log.suppressedTotal()).isEqualTo(997);
    }

    @Test
    void theNextIntervalWritesAgainAndSaysHowManyWereLeftOut() {
        for (int i = 0; i < 5; i++) {
            log.log(() -> "a");
        }
        now.addAndGet(Duration.ofSeconds(9).toNanos());
        log.log(() -> "still the same interval");
        assertThat(lines).containsExactly("a", "a", "a");
        now.addAndGet(Duration.ofSeconds(1).toNanos());
        log.log(() -> "b");
        log.log(() -> "c");
        assertThat(lines).containsExactly("a", "a", "a", "b (3 similar lines not logged before this one)", "c");
    }

    @Test
    void oneLineLeftOutIsSaidInTheSingular() {
        for (int i = 0; i < 4; i++) {
            log.log(() -> "x");
        }
        now.addAndGet(Duration.ofSeconds(10).toNanos());
        log.log(() -> "y");
        assertThat(lines).last().isEqualTo("y (1 similar line not logged before this one)");
    }
}
