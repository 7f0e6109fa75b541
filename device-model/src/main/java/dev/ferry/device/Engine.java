package dev.ferry.device;

import dev.ferry.device.spi.DeviceFunction;
import java.util.ArrayDeque;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A device's engine: the queue of MMIO writes, the one thread that runs them through the kind's
 * {@link DeviceFunction#execute}, and the gates the state machine flips step by step (D11, D12, D13). Every
 * field is guarded by the device's lock; the thread runs the kind's work without it, so that a P2P write into a
 * peer, which takes the peer's lock, can never deadlock.
 */
final class Engine {
    /** Queued MMIO writes beyond this are dropped and counted. */
    static final int MAX_QUEUED = 1024;

    private static final System.Logger LOG = System.getLogger(Engine.class.getName());

    /** A queued register write: part of the device's migrated state. */
    record QueuedWrite(int register, long value) {
    }

    /** How a wait for work in flight ended. */
    enum Quiesce { IDLE, TIMED_OUT, INTERRUPTED }

    private final String deviceId;
    private final DeviceFunction function;
    private final DeviceStats stats;
    private final ReentrantLock lock;
    private final Condition changed;
    private final Runnable workChanged;

    // Guarded by lock.
    private boolean running = true;
    private boolean ndma;
    private boolean held;
    private boolean inFlight;
    private boolean closed;
    private final ArrayDeque<QueuedWrite> queue = new ArrayDeque<>();
    private Thread thread;

    private volatile long quiesceTimeoutNanos = TimeUnit.SECONDS.toNanos(10);

    Engine(String deviceId, DeviceFunction function, DeviceStats stats, ReentrantLock lock, Runnable workChanged) {
        this.deviceId = deviceId;
        this.function = function;
        this.stats = stats;
        this.lock = lock;
        this.changed = lock.newCondition();
        this.workChanged = workChanged;
    }

    /** Starts the thread; with the lock held. */
    void start() {
        thread = new Thread(this::run, "ferry-device-" + deviceId);
        thread.setDaemon(true);
        thread.start();
    }

    void setQuiesceTimeout(long nanos) {
        quiesceTimeoutNanos = nanos;
    }

    /** Closes the gates for good; with the lock held. Returns the thread to join, or null if it never started. */
    Thread close() {
        closed = true;
        running = false;
        changed.signalAll();
        return thread;
    }

    boolean closed() {
        return closed;
    }

    // ---- MMIO ----------------------------------------------------------------------------------

    /**
     * D11, D12: a register write while RUNNING (with or without NDMA) is queued; while not RUNNING it is not
     * applied and counts as {@code mmioWhileStopped}. With the lock held; returns whether it was queued.
     */
    boolean enqueue(int register, long value, MmioSource source) {
        if (!running) {
            stats.mmioWhileStopped.increment();
            return false;
        }
        if (queue.size() >= MAX_QUEUED) {
            stats.mmioDropped.increment();
            return false;
        }
        queue.add(new QueuedWrite(register, value));
        if (source == MmioSource.P2P) {
            stats.p2pReceived.increment();
        } else {
            stats.mmioWrites.increment();
        }
        changed.signalAll();
        return true;
    }

    Collection<QueuedWrite> queue() {
        return queue;
    }

    int queued() {
        return queue.size();
    }

    void replaceQueue(List<QueuedWrite> writes) {
        queue.clear();
        queue.addAll(writes);
    }

    void clearQueue() {
        queue.clear();
    }

    // ---- the gates, as the priority order flips them ------------------------------------------

    /** Step 1: start no new work that may DMA. */
    void stopDma() {
        ndma = true;
    }

    /** Step 2: take no MMIO, start nothing (D12). */
    void freeze() {
        running = false;
    }

    /** Step 6. */
    void restart() {
        running = true;
        changed.signalAll();
    }

    /** Step 8. */
    void resumeDma() {
        ndma = false;
        changed.signalAll();
    }

    /** D2: puts back the gates of a write abandoned in steps 1 or 2. */
    void restore(boolean wasRunning, boolean wasNdma) {
        running = wasRunning;
        ndma = wasNdma;
        changed.signalAll();
    }

    /** D13: ERROR behaves as NDMA and takes no MMIO. */
    void toError() {
        running = false;
        ndma = true;
    }

    /** D5. */
    void reset() {
        running = !closed;
        ndma = false;
    }

    /**
     * Waits, releasing the lock, until no work is in flight: D11 (NDMA) and D12 (!RUNNING) hold only once the
     * work already started has finished. Bounded by the quiesce timeout and interruptible (a cancelled
     * migration); the interrupt stays set for the caller.
     *
     * @param extraNanos an injected delay before the wait ends (a slow quiesce), 0 normally
     */
    Quiesce awaitIdle(long extraNanos) {
        long deadline = System.nanoTime() + quiesceTimeoutNanos;
        long slowUntil = System.nanoTime() + extraNanos;
        while (true) {
            long now = System.nanoTime();
            long waitFor;
            if (inFlight) {
                waitFor = deadline - now;
            } else if (extraNanos > 0 && slowUntil - now > 0) {
                waitFor = Math.min(slowUntil - now, deadline - now);
            } else {
                return Quiesce.IDLE;
            }
            if (waitFor <= 0) {
                return Quiesce.TIMED_OUT;
            }
            try {
                changed.awaitNanos(waitFor);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return Quiesce.INTERRUPTED;
            }
        }
    }

    /** Holds the engine idle (a digest, a capture of the image, a reset): waits for work in flight, uninterruptibly. */
    void hold() {
        held = true;
        while (inFlight) {
            changed.awaitUninterruptibly();
        }
    }

    void release() {
        held = false;
        changed.signalAll();
    }

    /** The gate of queued work: RUNNING without NDMA, not held, not closed. */
    private boolean canWork() {
        return running && !ndma && !held && !closed;
    }

    /**
     * The gate of the device's own work: RUNNING (D12), not held, not closed. NDMA does not close it: the
     * device's own work writes only its own memory, and NDMA stops DMA (D11).
     */
    boolean canWorkOnOwnMemory() {
        return running && !held && !closed;
    }

    /** No work in flight, and nothing queued that could run now. */
    boolean isQuiescent() {
        return !inFlight && (queue.isEmpty() || !canWork());
    }

    // ---- the thread ----------------------------------------------------------------------------

    private void run() {
        while (true) {
            QueuedWrite work;
            lock.lock();
            try {
                while (!closed && (queue.isEmpty() || !canWork())) {
                    changed.awaitUninterruptibly();
                }
                if (closed) {
                    return;
                }
                work = queue.poll();
                inFlight = true;
            } finally {
                lock.unlock();
            }
            try {
                function.execute(work.register(), work.value());
                stats.operations.increment();
            } catch (IommuFault e) {
                // Counted as an IOMMU fault where it happened; the operation is dropped, as hardware would.
                stats.operationErrors.increment();
            } catch (InterruptedException e) {
                if (isClosed()) {
                    endWork();
                    return;
                }
                stats.operationErrors.increment();
            } catch (RuntimeException e) {
                stats.operationErrors.increment();
                LOG.log(System.Logger.Level.WARNING, "device " + deviceId + " failed an operation", e);
            } finally {
                endWork();
            }
        }
    }

    private boolean isClosed() {
        lock.lock();
        try {
            return closed;
        } finally {
            lock.unlock();
        }
    }

    private void endWork() {
        lock.lock();
        try {
            inFlight = false;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        workChanged.run();
    }

    /** Wakes whoever waits on the device's condition (the state machine's waits are on it too). */
    void signal() {
        changed.signalAll();
    }
}
