package dev.ferry.protocol.transfer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Workers a caller can always stop and wait for: closing returns only once every task's work has returned. */
class TaskGroupTest {
    private final ExecutorService pool = Executors.newCachedThreadPool();

    @AfterEach
    void stop() {
        pool.shutdownNow();
    }

    @Test
    void closeInterruptsABlockedTaskAndReturnsOnlyOnceItsWorkHasReturned() throws Exception {
        CountDownLatch started = new CountDownLatch(1);
        AtomicBoolean returned = new AtomicBoolean();
        TaskGroup group = new TaskGroup(pool, "test");
        TaskGroup.Task<Void> task = group.submit(() -> {
            try {
                started.countDown();
                new CountDownLatch(1).await();
                return null;
            } finally {
                returned.set(true);
            }
        });
        assertThat(started.await(5, TimeUnit.SECONDS)).isTrue();
        group.close();
        assertThat(returned).isTrue();
        assertThatThrownBy(task::join).isInstanceOf(ExecutionException.class).hasCauseInstanceOf(InterruptedException.class);
    }

    @Test
    void awaitAllOrFailureReturnsAtTheFirstFailureWithoutWaitingForTheRest() throws Exception {
        TaskGroup group = new TaskGroup(pool, "test");
        TaskGroup.Task<Void> blocked = group.submit(() -> {
            new CountDownLatch(1).await();
            return null;
        });
        TaskGroup.Task<Void> failing = group.submit(() -> {
            throw new IllegalStateException("broken");
        });
        group.awaitAllOrFailure();
        assertThat(failing.failed()).isTrue();
        assertThat(blocked.failed()).isFalse();
        group.close();
        assertThat(blocked.failed()).as("interrupted by close").isTrue();
    }

    @Test
    void aTaskSubmittedAfterCloseNeverRuns() throws Exception {
        TaskGroup group = new TaskGroup(pool, "test");
        group.close();
        AtomicBoolean ran = new AtomicBoolean();
        TaskGroup.Task<Boolean> late = group.submit(() -> ran.getAndSet(true));
        assertThatThrownBy(late::join).hasCauseInstanceOf(InterruptedException.class);
        assertThat(ran).isFalse();
    }

    @Test
    void aCallerInterruptedWhileClosingStillWaitsAndKeepsItsInterrupt() throws Exception {
        TaskGroup group = new TaskGroup(pool, "test");
        CountDownLatch started = new CountDownLatch(1);
        group.submit(() -> {
            started.countDown();
            new CountDownLatch(1).await();
            return null;
        });
        assertThat(started.await(5, TimeUnit.SECONDS)).isTrue();
        Thread.currentThread().interrupt();
        group.close();
        assertThat(Thread.interrupted()).isTrue();
    }
}
