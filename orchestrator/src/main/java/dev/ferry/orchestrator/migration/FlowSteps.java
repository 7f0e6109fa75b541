package dev.ferry.orchestrator.migration;

import java.util.function.Consumer;
import org.slf4j.Logger;

/**
 * The thread a flow runs its steps on, which a stop interrupts, but only while it runs them: every
 * wait in the steps is interruptible, so a cancel or shutdown takes effect at once in any phase (SPEC
 * F12), while the failure path after them (closing channels, joining workers, the rollback) always
 * runs to its end, free of interrupts.
 */
final class FlowSteps {
    /** The steps of a flow, which end early by throwing. */
    @FunctionalInterface
    interface Steps {
        void run() throws MigrationFailure, InterruptedException;
    }

    private Thread thread;

    /**
     * Runs the steps on the calling thread and hands whatever ends them early to {@code fail}: a failure
     * as it is, an interrupt as a stop (the flow knows which: its commit point holds the reason), any
     * other exception as a bug, logged with its trace.
     */
    void run(Steps steps, Consumer<MigrationFailure> fail, Logger log, String flow) {
        synchronized (this) {
            thread = Thread.currentThread();
        }
        MigrationFailure failure = null;
        try {
            steps.run();
        } catch (MigrationFailure f) {
            failure = f;
        } catch (InterruptedException e) {
            failure = new MigrationFailure(MigrationFailure.CANCELLED, "stopped");
        } catch (RuntimeException e) {
            log.error("{} failed", flow, e);
            failure = new MigrationFailure(MigrationFailure.INTERNAL, e.toString());
        } finally {
            synchronized (this) {
                thread = null;
                // A stop that came as the steps ended must not interrupt the failure path.
                Thread.interrupted();
            }
        }
        if (failure != null) {
            fail.accept(failure);
        }
    }

    /** Interrupts the steps if they are running; does nothing before or after. */
    synchronized void interrupt() {
        if (thread != null) {
            thread.interrupt();
        }
    }
}
