package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThatCode;

import org.junit.jupiter.api.Test;

/** The warm-up runs the code a first migration runs, leaving nothing behind (buffers are checked for leaks). */
class WarmupTest {
    @Test
    void theWarmUpRunsEveryStepAndReleasesWhatItTook() {
        assertThatCode(Warmup::run).doesNotThrowAnyException();
        assertThatCode(Warmup::run).as("and again").doesNotThrowAnyException();
    }
}
