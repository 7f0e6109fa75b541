package dev.ferry.orchestrator.migration;

/**
 * The point after which a migration no longer rolls back (F4, F5): on the source, sending COMMIT; on
 * the destination, receiving it. An operator's cancel and the commit race for it, and a failure
 * closes it: whichever comes first decides.
 */
final class CommitPoint {
    /** Where a failed flow stood: past the commit, and whether an operator's cancel made it fail. */
    record Failure(boolean committed, boolean byCancel) {
    }

    private boolean committed;
    private boolean cancelled;

    /** An operator's cancel; true when it came before the commit, so the migration will roll back. */
    synchronized boolean cancel() {
        if (committed) {
            return false;
        }
        cancelled = true;
        return true;
    }

    /** Whether a cancel or a failure closed the point before the commit. */
    synchronized boolean cancelled() {
        return cancelled;
    }

    /** Passes the point, unless a cancel or a failure came first: then {@code cancelled} and a rollback. */
    synchronized void commit(String whenCancelled) throws MigrationFailure {
        if (cancelled) {
            throw new MigrationFailure(MigrationFailure.CANCELLED, whenCancelled);
        }
        committed = true;
    }

    /**
     * Takes back a commit that provably never left (its COMMIT was not written). The flow then fails
     * and, through {@link #fail()}, rolls back as before the commit.
     */
    synchronized void withdraw() {
        committed = false;
    }

    /** A failure: no commit can follow it; says whether it came after the commit, and whether a cancel caused it. */
    synchronized Failure fail() {
        Failure failure = new Failure(committed, cancelled && !committed);
        if (!committed) {
            cancelled = true;
        }
        return failure;
    }
}
