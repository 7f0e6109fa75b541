package dev.ferry.orchestrator.migration;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The destination's side of the iteration barrier: the last iteration each data channel has ended
 * (DATA_END, after every page of it was applied). At the source's ITERATION_END(i) the flow waits here
 * until every channel has ended i, then answers ITERATION_DONE(i). The wait has no clock of its own:
 * it ends when the iteration is complete, when a data channel closes (the keepalive timeout closes a
 * silent one), or when the flow is interrupted.
 */
final class IterationBarrier {
    private final Map<Integer, Integer> ended = new HashMap<>();
    private long firstPassPages;
    private boolean broken;

    /** Channel {@code channel} ended {@code iteration} with {@code pages} pages; on its event loop. */
    synchronized void ended(int channel, int iteration, long pages) {
        ended.put(channel, iteration);
        if (iteration == 0) {
            firstPassPages += pages;
        }
        notifyAll();
    }

    /** Pages of iteration 0 over every channel that has ended it. */
    synchronized long firstPassPages() {
        return firstPassPages;
    }

    /** A data channel closed: the barrier can no longer be reached. */
    synchronized void broken() {
        broken = true;
        notifyAll();
    }

    /** Waits until {@code channels} data channels have ended {@code iteration}; false if a channel closed first. */
    synchronized boolean await(int iteration, int channels) throws InterruptedException {
        return await(iteration, channels, Long.MAX_VALUE) == Wait.REACHED;
    }

    /** What a wait found: the iteration complete, a channel closed, or neither before the wait's end. */
    enum Wait { REACHED, BROKEN, PENDING }

    /** As {@link #await(int, int)}, for at most {@code nanos}: for a caller with other work while pages land. */
    synchronized Wait await(int iteration, int channels, long nanos) throws InterruptedException {
        long deadline = nanos == Long.MAX_VALUE ? Long.MAX_VALUE : System.nanoTime() + nanos;
        while (!reached(iteration, channels)) {
            if (broken) {
                return Wait.BROKEN;
            }
            if (deadline == Long.MAX_VALUE) {
                wait();
            } else {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return Wait.PENDING;
                }
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
        }
        return Wait.REACHED;
    }

    private boolean reached(int iteration, int channels) {
        if (ended.size() < channels) {
            return false;
        }
        for (int last : ended.values()) {
            if (last < iteration) {
                return false;
            }
        }
        return true;
    }
}
