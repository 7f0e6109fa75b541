package dev.ferry.orchestrator.migration;

import java.util.concurrent.TimeUnit;

/**
 * The point after which a migration no longer rolls back (F4, F5): on the source, COMMIT written to
 * the socket; on the destination, COMMIT received. A cancel and the commit race for it, and a failure
 * closes it: whichever comes first decides.
 *
 * <p>On the source the commit takes a moment: COMMIT is written, and only a completed write counts (a
 * COMMIT that never left whole cannot have reached the destination, so the migration still rolls
 * back). A cancel that arrives meanwhile waits for that outcome, so its answer ({@code too_late} or
 * cancelled) is never contradicted by what the flow does next.
 */
final class CommitPoint {
    /** Where a failed flow stood: past the commit, and the cancel that made it fail, if one did. */
    record Failure(boolean committed, String cancelReason) {
        boolean byCancel() {
            return cancelReason != null;
        }
    }

    private enum State { OPEN, COMMITTING, COMMITTED, CLOSED }

    private State state = State.OPEN;
    private String cancelReason;

    /**
     * A cancel, with its reason ({@code cancelled}, {@code shutdown}); true when it came before the
     * commit, so the migration rolls back. While a commit is being written it waits up to
     * {@code waitMillis} for the outcome; if there is still none, the commit has not happened yet and
     * the flow will withdraw it, so the cancel holds.
     */
    synchronized boolean cancel(String reason, long waitMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(waitMillis);
        while (state == State.COMMITTING) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                break;
            }
            TimeUnit.NANOSECONDS.timedWait(this, left);
        }
        if (state == State.COMMITTED) {
            return false;
        }
        if (cancelReason == null && state != State.CLOSED) {
            cancelReason = reason;
        }
        if (state == State.OPEN) {
            state = State.CLOSED;
        }
        return true;
    }

    /** Whether a cancel or a failure closed the point before the commit. */
    synchronized boolean closed() {
        return state == State.CLOSED || cancelReason != null;
    }

    /** The reason of the cancel that closed the point, or null. */
    synchronized String cancelReason() {
        return cancelReason;
    }

    /** The source begins writing COMMIT; refused if a cancel or failure came first. */
    synchronized void beginCommit() throws MigrationFailure {
        if (state != State.OPEN || cancelReason != null) {
            throw new MigrationFailure(cancelReason != null ? cancelReason : MigrationFailure.CANCELLED,
                    "stopped before the commit");
        }
        state = State.COMMITTING;
    }

    /** COMMIT is written: from here the source never restarts the VM by itself. */
    synchronized void committed() {
        if (state == State.COMMITTING) {
            state = State.COMMITTED;
        }
        notifyAll();
    }

    /** COMMIT provably never left whole: the migration fails and rolls back as before the commit. */
    synchronized void withdrawn() {
        if (state == State.COMMITTING) {
            state = State.CLOSED;
        }
        notifyAll();
    }

    /** The destination received COMMIT. */
    synchronized void commit() throws MigrationFailure {
        beginCommit();
        committed();
    }

    /** A failure: no commit can follow it; says whether it came after the commit, and which cancel caused it. */
    synchronized Failure fail() {
        boolean committed = state == State.COMMITTED;
        Failure failure = new Failure(committed, committed ? null : cancelReason);
        if (!committed) {
            state = State.CLOSED;
        }
        notifyAll();
        return failure;
    }
}
