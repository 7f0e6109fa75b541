package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The destination's iteration barrier: every channel ended the iteration, or one closed, or the flow is stopped. */
class IterationBarrierTest {
    @Test
    void passesOnceEveryChannelEndedTheIteration() throws Exception {
        IterationBarrier barrier = new IterationBarrier();
        CompletableFuture<Boolean> waiting = CompletableFuture.supplyAsync(() -> await(barrier, 1, 2));
        barrier.ended(0, 0, 10);
        barrier.ended(1, 0, 6);
        barrier.ended(0, 1, 3);
        assertThat(waiting).isNotDone();
        barrier.ended(1, 1, 0);
        assertThat(waiting.get(5, TimeUnit.SECONDS)).isTrue();
        assertThat(barrier.firstPassPages()).isEqualTo(16);
        assertThat(barrier.await(0, 2)).as("an earlier iteration passes at once").isTrue();
    }

    @Test
    void aClosedChannelBreaksIt() throws Exception {
        IterationBarrier barrier = new IterationBarrier();
        CompletableFuture<Boolean> waiting = CompletableFuture.supplyAsync(() -> await(barrier, 0, 2));
        barrier.ended(0, 0, 1);
        barrier.broken();
        assertThat(waiting.get(5, TimeUnit.SECONDS)).isFalse();
    }

    @Test
    void anInterruptEndsTheWait() throws Exception {
        IterationBarrier barrier = new IterationBarrier();
        Thread waiter = Thread.currentThread();
        CompletableFuture.runAsync(() -> {
            // Interrupt once the waiter waits; the barrier has no clock of its own.
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(10))
                    .until(() -> waiter.getState() == Thread.State.WAITING);
            waiter.interrupt();
        });
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> barrier.await(0, 1)).isInstanceOf(InterruptedException.class);
    }

    @Test
    void aBoundedWaitSaysWhetherTheIterationIsCompleteBrokenOrStillPending() throws Exception {
        IterationBarrier barrier = new IterationBarrier();
        long slice = TimeUnit.MILLISECONDS.toNanos(1);
        assertThat(barrier.await(0, 2, slice)).as("nothing ended yet").isEqualTo(IterationBarrier.Wait.PENDING);
        barrier.ended(0, 0, 4);
        assertThat(barrier.await(0, 2, slice)).as("one channel of two").isEqualTo(IterationBarrier.Wait.PENDING);
        barrier.ended(1, 0, 4);
        assertThat(barrier.await(0, 2, slice)).isEqualTo(IterationBarrier.Wait.REACHED);
        assertThat(barrier.await(0, 2, 0)).as("complete needs no time").isEqualTo(IterationBarrier.Wait.REACHED);
        assertThat(barrier.await(1, 2, slice)).isEqualTo(IterationBarrier.Wait.PENDING);
        barrier.broken();
        assertThat(barrier.await(1, 2, slice)).isEqualTo(IterationBarrier.Wait.BROKEN);
    }

    private static boolean await(IterationBarrier barrier, int iteration, int channels) {
        try {
            return barrier.await(iteration, channels);
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }
}
