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

    @Test
    void workRunHereIsInterruptedWhenAPoolTaskFailsAndTheInterruptDoesNotOutliveIt() throws Exception {
        TaskGroup group = new TaskGroup(pool, "test");
        CountDownLatch callerWaiting = new CountDownLatch(1);
        TaskGroup.Task<Void> failing = group.submit(() -> {
            callerWaiting.await();
            throw new IllegalStateException("broken");
        });
        TaskGroup.Task<Boolean> here = group.runHere(() -> {
            callerWaiting.countDown();
            // Bounded, so that a group that never interrupts fails the test instead of hanging it.
            return new CountDownLatch(1).await(30, TimeUnit.SECONDS);
        });
        assertThat(Thread.interrupted()).as("the group's interrupt is consumed").isFalse();
        assertThatThrownBy(here::join).hasCauseInstanceOf(InterruptedException.class);
        group.awaitAllOrFailure();
        assertThat(failing.failed()).isTrue();
        assertThat(here.stoppedByGroup()).as("stopped because the other failed").isTrue();
        assertThat(failing.stoppedByGroup()).as("the failure to report").isFalse();
        group.close();
    }

    @Test
    void workRunHereDoesNotStartOnceAPoolTaskHasFailed() throws Exception {
        TaskGroup group = new TaskGroup(pool, "test");
        group.submit(() -> {
            throw new IllegalStateException("broken");
        });
        group.awaitAllOrFailure();
        AtomicBoolean ran = new AtomicBoolean();
        TaskGroup.Task<Boolean> here = group.runHere(() -> ran.getAndSet(true));
        assertThatThrownBy(here::join).hasCauseInstanceOf(InterruptedException.class);
        assertThat(ran).isFalse();
        assertThat(here.stoppedByGroup()).isTrue();
        assertThat(Thread.interrupted()).isFalse();
        group.close();
    }

    @Test
    void aPoolTaskFailingAfterTheCallersWorkReturnedLeavesTheCallerUninterrupted() throws Exception {
        TaskGroup group = new TaskGroup(pool, "test");
        CountDownLatch callerDone = new CountDownLatch(1);
        TaskGroup.Task<Void> failing = group.submit(() -> {
            callerDone.await();
            throw new IllegalStateException("broken");
        });
        TaskGroup.Task<Integer> here = group.runHere(() -> 7);
        callerDone.countDown();
        group.awaitAllOrFailure();
        assertThat(failing.failed()).isTrue();
        assertThat(here.join()).isEqualTo(7);
        assertThat(Thread.interrupted()).isFalse();
        group.close();
    }

    @Test
    void anInterruptOfTheCallerFromElsewhereOutlivesTheWorkRunHere() throws Exception {
        TaskGroup group = new TaskGroup(pool, "test");
        TaskGroup.Task<Integer> here = group.runHere(() -> {
            // As if the caller were interrupted from outside (its migration cancelled) as the work returned.
            Thread.currentThread().interrupt();
            return 7;
        });
        assertThat(Thread.interrupted()).as("the caller's own interrupt stays").isTrue();
        assertThat(here.join()).isEqualTo(7);
        group.close();
    }
}
