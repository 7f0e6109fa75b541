package dev.ferry.protocol.transfer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Tasks that work for one caller on other threads (the page senders of a pass, a device drain), which
 * the caller can always stop and wait for. Unlike a {@code Future}'s cancel, {@link #close} returns only
 * once every task has really ended: a failed pass must not roll back, or free, memory that a sender
 * still reads.
 *
 * <p>The caller may also take one share of the work itself ({@link #runHere}) instead of handing it to
 * the pool and waiting: in stop-and-copy every hand-off is a thread to wake during the downtime, and on
 * a loaded host a wake-up can cost milliseconds.
 */
public final class TaskGroup implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(TaskGroup.class.getName());
    /** How long {@link #close} waits for interrupted tasks: their waits are all interruptible. */
    private static final long JOIN_LIMIT_NANOS = TimeUnit.SECONDS.toNanos(10);

    /** A task's outcome, once it ended. */
    public final class Task<T> {
        private final CountDownLatch done = new CountDownLatch(1);
        private final Callable<T> work;
        /** Run by the group's caller ({@link #runHere}), not by the pool. */
        private final boolean here;
        private Thread thread;
        private boolean cancelled;
        /** Whether the group interrupted the task's thread while it ran. */
        private boolean interrupted;
        private T value;
        private Throwable failure;

        private Task(Callable<T> work, boolean here) {
            this.work = work;
            this.here = here;
        }

        private void run() {
            synchronized (this) {
                if (cancelled) {
                    failure = new InterruptedException("cancelled before it started");
                    done.countDown();
                    return;
                }
                thread = Thread.currentThread();
            }
            try {
                value = work.call();
            } catch (Throwable t) {
                failure = t;
            } finally {
                synchronized (this) {
                    thread = null;
                    // An interrupt that came too late to matter must not leak into the pool's next task, nor
                    // into the caller's next wait; one from elsewhere is the caller's own and stays.
                    if (!here || interrupted) {
                        Thread.interrupted();
                    }
                }
                done.countDown();
                ended(this);
            }
        }

        private synchronized void cancel() {
            cancelled = true;
            if (thread != null) {
                interrupted = true;
                thread.interrupt();
            }
        }

        /** Whether the task has ended with an exception. */
        public boolean failed() {
            return done.getCount() == 0 && failure != null;
        }

        /**
         * Whether the task ended because the group stopped it (interrupted, or never started): another
         * task's failure, or the group's close, is then the cause to report, not this one's.
         */
        public synchronized boolean stoppedByGroup() {
            return failed() && cancelled && failure instanceof InterruptedException;
        }

        /** Waits for the task and returns its value; its exception is the cause of the one thrown. */
        public T join() throws ExecutionException, InterruptedException {
            done.await();
            if (failure != null) {
                throw new ExecutionException(failure);
            }
            return value;
        }

        boolean awaitEnd(long nanos) throws InterruptedException {
            return done.await(nanos, TimeUnit.NANOSECONDS);
        }
    }

    private final Executor executor;
    private final String name;
    private final List<Task<?>> tasks = new ArrayList<>();
    private boolean closed;

    public TaskGroup(Executor executor, String name) {
        this.executor = executor;
        this.name = name;
    }

    /** Starts a task; if the executor refuses it (shut down), the task ends at once with that failure. */
    public synchronized <T> Task<T> submit(Callable<T> work) {
        Task<T> task = new Task<>(work, false);
        if (closed) {
            task.cancel();
        }
        tasks.add(task);
        try {
            executor.execute(task::run);
        } catch (RejectedExecutionException e) {
            task.failure = e;
            task.done.countDown();
            notifyAll();
        }
        return task;
    }

    /**
     * Runs {@code work} on the calling thread as one of the group's tasks and returns it ended. A task of
     * the pool that fails meanwhile interrupts it, as {@link #close} would a pool task, so the caller is
     * stopped as soon as the group's work has failed; if one failed before, the work does not start.
     */
    public <T> Task<T> runHere(Callable<T> work) {
        Task<T> task = new Task<>(work, true);
        synchronized (this) {
            tasks.add(task);
            if (closed || anyFailed()) {
                task.cancel();
            }
        }
        task.run();
        return task;
    }

    private boolean anyFailed() {
        for (Task<?> task : tasks) {
            if (task.done.getCount() == 0 && task.failure != null) {
                return true;
            }
        }
        return false;
    }

    private synchronized void ended(Task<?> ended) {
        if (ended.failure != null) {
            for (Task<?> task : tasks) {
                if (task.here && task != ended) {
                    task.cancel();
                }
            }
        }
        notifyAll();
    }

    /**
     * Waits until every task has ended, or one has failed, whichever comes first: a pass whose sender on
     * one channel failed stops at once, without waiting for the senders of the other channels.
     */
    public synchronized void awaitAllOrFailure() throws InterruptedException {
        while (true) {
            boolean all = true;
            for (Task<?> task : tasks) {
                if (task.done.getCount() > 0) {
                    all = false;
                } else if (task.failure != null) {
                    return;
                }
            }
            if (all) {
                return;
            }
            wait();
        }
    }

    /** Interrupts every task still running and waits until all have ended. Idempotent. */
    @Override
    public void close() {
        List<Task<?>> all;
        synchronized (this) {
            closed = true;
            all = List.copyOf(tasks);
        }
        all.forEach(Task::cancel);
        boolean interrupted = Thread.interrupted();
        long deadline = System.nanoTime() + JOIN_LIMIT_NANOS;
        try {
            for (Task<?> task : all) {
                while (true) {
                    try {
                        if (!task.awaitEnd(Math.max(0, deadline - System.nanoTime()))) {
                            LOG.log(System.Logger.Level.ERROR, name + ": a task did not end within "
                                    + TimeUnit.NANOSECONDS.toSeconds(JOIN_LIMIT_NANOS) + " s of being interrupted");
                        }
                        break;
                    } catch (InterruptedException e) {
                        interrupted = true;
                    }
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
