package dev.ferry.device;

import dev.ferry.device.memory.ChunkPool;
import dev.ferry.device.memory.DirtyBitmap;
import dev.ferry.device.memory.MemoryDigest;
import dev.ferry.device.memory.PageStore;
import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.migration.DeviceImage;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.InitialData;
import dev.ferry.device.migration.LoadStream;
import dev.ferry.device.migration.MigrationFlags;
import dev.ferry.device.migration.MigrationState;
import dev.ferry.device.migration.NextStateRule;
import dev.ferry.device.migration.SaveStream;
import dev.ferry.device.migration.StreamFormatException;
import dev.ferry.device.migration.TransitionFailure;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.migration.TransitionStep;
import dev.ferry.device.migration.WindowWrite;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An emulated device and the one migration core every kind shares: the v1 state bits with their
 * priority order (D1–D13), the data window (W1–W6) and the v2 walk (V1–V3).
 *
 * <h2>Threads</h2>
 * <ul>
 *   <li>MMIO writes (from vCPUs, or from peers through the IOMMU) only queue work, under
 *       {@link #lock}. The queue is part of the device's state and is migrated.</li>
 *   <li>One engine thread per device takes queued work and runs the kind's {@link #execute}: DMA,
 *       interrupts, internal state changes. It runs only while RUNNING without NDMA. The kind's
 *       registers belong to the engine while it executes, and to whoever holds {@link #lock}
 *       while it does not.</li>
 *   <li>The device's own work ({@link #ownWork}), writes of its own memory offered by the VM's
 *       workload, runs on the workload's thread holding {@link #lock}, and only while RUNNING: it is
 *       not DMA, so NDMA does not stop it.</li>
 *   <li>State writes and resets are serialised by {@link #transitions}; they flip the engine's
 *       gates step by step and wait, releasing the lock, for work in flight to finish.</li>
 * </ul>
 * No lock is held while a device DMAs, so a P2P write into a peer, which takes the peer's lock,
 * can never deadlock.
 */
public abstract class Device implements AutoCloseable {
    /** Register 0: the doorbell; its value is {@code op << 56 | argument}. */
    public static final int REG_DOORBELL = 0;
    /** Register 1: guest-physical base of the device's ring area. */
    public static final int REG_RING_BASE = 1;
    /** Register 2: size of the ring area in bytes. */
    public static final int REG_RING_SIZE = 2;
    /** Registers in the 4 KiB BAR. */
    public static final int REGISTERS = Iommu.BAR_BYTES / 8;
    /** Queued MMIO writes beyond this are dropped and counted. */
    public static final int MAX_QUEUED = 1024;
    /** Bytes of one write of the device's own work; like a vCPU's write, each dirties a whole page. */
    public static final int OWN_WRITE_BYTES = 64;
    /** A queued write in the device state: register {@code u16}, value {@code u64}. */
    private static final int QUEUED_WRITE_BYTES = 2 + 8;

    /** Device memory is allocated in 64 KiB pieces on first write; untouched pieces stream as zero records. */
    private static final int DEVICE_MEMORY_CHUNK = 64 * 1024;

    private static final System.Logger LOG = System.getLogger(Device.class.getName());

    private final DeviceConfig config;
    private final int slot;
    private final byte[] configBytes;
    private final PageStore memory;
    private final DirtyBitmap memoryLog;
    private final DeviceStats stats = new DeviceStats();
    private final Image image = new Image();
    private final List<TransitionListener> listeners = new CopyOnWriteArrayList<>();

    private final ReentrantLock transitions = new ReentrantLock();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();

    // Guarded by lock.
    private DeviceState state = DeviceState.RUNNING;
    private boolean engineRunning = true;
    private boolean engineNdma;
    private boolean held;
    private boolean inFlight;
    private boolean closed;
    private final ArrayDeque<Mmio> queue = new ArrayDeque<>();
    private final byte[] ownWrite = new byte[OWN_WRITE_BYTES];
    private SaveStream save;
    private LoadStream load;
    private long lastLoaded;
    private DeviceBus bus;
    private Thread engine;

    private volatile long quiesceTimeoutNanos = TimeUnit.SECONDS.toNanos(10);

    protected Device(DeviceConfig config, int slot, ChunkPool memoryPool) {
        if (slot < 0) {
            throw new IllegalArgumentException("slot must be >= 0: " + slot);
        }
        this.config = config;
        this.slot = slot;
        this.configBytes = config.canonicalBytes();
        // Small device memory is allocated in small pieces as it is written; large memory (a GPU's) in
        // the VM's chunks, from its memory pool.
        this.memory = config.memoryBytes() < memoryPool.chunkBytes()
                ? new PageStore(config.memoryBytes(), DEVICE_MEMORY_CHUNK)
                : new PageStore(config.memoryBytes(), memoryPool.chunkBytes(), memoryPool);
        this.memoryLog = new DirtyBitmap(memory.pages());
    }

    /** Creates a device of the configured kind, RUNNING and not yet attached to a bus (D5). */
    public static Device create(DeviceConfig config, int slot) {
        return create(config, slot, ChunkPool.NONE);
    }

    /** {@link #create(DeviceConfig, int)} with large device memory from {@code memoryPool}. */
    public static Device create(DeviceConfig config, int slot, ChunkPool memoryPool) {
        return switch (config.kind()) {
            case NIC -> new NicDevice(config, slot, memoryPool);
            case GPU -> new GpuDevice(config, slot, memoryPool);
            case SERIAL -> new SerialDevice(config, slot, memoryPool);
            case CRYPTO -> new CryptoDevice(config, slot, memoryPool);
            case NVME -> new NvmeDevice(config, slot, memoryPool);
        };
    }

    // ---- identity ------------------------------------------------------------------------------

    public final String id() {
        return config.id();
    }

    public final DeviceKind kind() {
        return config.kind();
    }

    public final DeviceConfig config() {
        return config;
    }

    /** The device's place in the VM: its ring area and its P2P BAR address follow from it. */
    public final int slot() {
        return slot;
    }

    public final DeviceStats stats() {
        return stats;
    }

    /** STOP_COPY always; P2P with NDMA; PRE_COPY with internal dirty logging (SPEC §3). */
    public final MigrationFlags migrationFlags() {
        return new MigrationFlags(config.ndma(), config.preCopy());
    }

    public final void addListener(TransitionListener listener) {
        listeners.add(listener);
    }

    public final void removeListener(TransitionListener listener) {
        listeners.remove(listener);
    }

    /** How long NDMA and !RUNNING wait for work in flight before the write fails into ERROR. */
    public final void setQuiesceTimeout(long timeout, TimeUnit unit) {
        quiesceTimeoutNanos = unit.toNanos(timeout);
    }

    /** Attaches the device to its machine and starts its engine. */
    public final void attach(DeviceBus deviceBus) {
        lock.lock();
        try {
            if (bus != null) {
                throw new IllegalStateException("device " + id() + " is already attached");
            }
            bus = deviceBus;
            engine = new Thread(this::runEngine, "ferry-device-" + id());
            engine.setDaemon(true);
            engine.start();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Stops the engine and frees the device memory. Work in flight finishes first; the device takes
     * no further writes, and its data window must not be used any more.
     */
    @Override
    public void close() {
        Thread thread;
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            engineRunning = false;
            changed.signalAll();
            thread = engine;
        } finally {
            lock.unlock();
        }
        if (thread != null) {
            thread.interrupt();
            try {
                thread.join(TimeUnit.SECONDS.toMillis(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            if (!thread.isAlive()) {
                memory.release();
            }
        }
    }

    // ---- state ---------------------------------------------------------------------------------

    public final DeviceState state() {
        lock.lock();
        try {
            return state;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Writes the v1 {@code device_state} (SPEC §1). Applies the changed bits group by group in the
     * priority order and stops at the first group that fails.
     */
    public final TransitionResult setState(DeviceState requested) {
        transitions.lock();
        try {
            long start = System.nanoTime();
            TransitionResult result;
            lock.lock();
            try {
                result = apply(state, requested);
            } finally {
                lock.unlock();
            }
            long duration = System.nanoTime() - start;
            notifyWorkChanged();
            for (TransitionListener listener : listeners) {
                listener.transitioned(this, requested, result, start, duration);
            }
            return result;
        } finally {
            transitions.unlock();
        }
    }

    /** The outcome of a v2 request: the states passed through, and where the device is now. */
    public record V2Result(List<MigrationState> path, TransitionResult last, boolean succeeded) {
    }

    /**
     * A v2 state request (SPEC §3): walks single arcs chosen by the kernel's next-state rule (V1),
     * each arc one v1 write. Fails at once, unchanged, for ERROR, a state the device lacks, a
     * current state with no v2 twin, or STOP_COPY towards pre-copy (V2). If an arc fails the device
     * stays where that arc left it (V3).
     */
    public final V2Result setMigrationState(MigrationState target) {
        transitions.lock();
        try {
            DeviceState now = state();
            MigrationState current = now.toMigrationState();
            MigrationFlags flags = migrationFlags();
            if (current == null) {
                return rejectedV2(now, TransitionFailure.NO_V2_STATE, "device state " + now + " has no v2 equivalent");
            }
            if (!target.supportedBy(flags)) {
                return rejectedV2(now, TransitionFailure.V2_UNSUPPORTED,
                        "device " + id() + " (" + flags + ") cannot be asked for " + target);
            }
            var path = NextStateRule.path(flags, current, target);
            if (path.isEmpty()) {
                return rejectedV2(now, TransitionFailure.V2_NO_PATH, "no transition from " + current + " to " + target);
            }
            List<MigrationState> passed = new ArrayList<>();
            TransitionResult last = new TransitionResult.Succeeded(now, now);
            for (MigrationState arc : path.get()) {
                last = setState(arc.v1());
                if (!last.succeeded()) {
                    return new V2Result(List.copyOf(passed), last, false);
                }
                passed.add(arc);
            }
            return new V2Result(List.copyOf(passed), last, true);
        } finally {
            transitions.unlock();
        }
    }

    private static V2Result rejectedV2(DeviceState now, TransitionFailure failure, String message) {
        return new V2Result(List.of(), new TransitionResult.Rejected(now, failure, message), false);
    }

    /**
     * D5: from any state, ERROR included, the data window is discarded and the device is RUNNING
     * with its internal state reset.
     */
    public final DeviceState reset() {
        transitions.lock();
        try {
            long start = System.nanoTime();
            DeviceState from;
            lock.lock();
            try {
                from = state;
                held = true;
                try {
                    while (inFlight) {
                        changed.awaitUninterruptibly();
                    }
                    discardWindow();
                    resetInternalState();
                    lastLoaded = 0;
                    state = DeviceState.RUNNING;
                    engineRunning = !closed;
                    engineNdma = false;
                } finally {
                    held = false;
                    changed.signalAll();
                }
            } finally {
                lock.unlock();
            }
            long duration = System.nanoTime() - start;
            notifyWorkChanged();
            for (TransitionListener listener : listeners) {
                listener.reset(this, from, start, duration);
            }
            return DeviceState.RUNNING;
        } finally {
            transitions.unlock();
        }
    }

    private TransitionResult apply(DeviceState cur, DeviceState req) {
        if (closed) {
            return new TransitionResult.Rejected(cur, TransitionFailure.DEVICE_CLOSED, "device " + id() + " was removed");
        }
        if (cur.isError()) {
            return new TransitionResult.Rejected(cur, TransitionFailure.IN_ERROR, "device " + id() + " is in ERROR; only reset leaves it");
        }
        if (!req.isValidRequest()) {
            return new TransitionResult.Rejected(cur, TransitionFailure.INVALID_STATE,
                    "device_state " + req.bits() + " (" + req + ") is not a valid request");
        }
        if (req.ndma() && !config.ndma()) {
            return new TransitionResult.Rejected(cur, TransitionFailure.NDMA_UNSUPPORTED,
                    "device " + id() + " (" + kind() + ") does not support NDMA");
        }
        if (cur.stopCopy() && req.preCopy()) {
            return new TransitionResult.Rejected(cur, TransitionFailure.NO_RETURN_TO_PRE_COPY,
                    "device " + id() + " is in stop-and-copy; the save cannot go back to pre-copy");
        }

        // 1. NDMA set: stop starting DMA and wait for DMA in flight (D11).
        if (req.ndma() && !cur.ndma()) {
            step(TransitionStep.NDMA_SET);
            engineNdma = true;
            Quiesce quiesce = awaitEngineIdle();
            if (quiesce == Quiesce.INTERRUPTED) {
                return abandoned(cur);
            }
            if (quiesce == Quiesce.TIMED_OUT) {
                return failed(cur, TransitionFailure.QUIESCE_TIMEOUT, "DMA still in flight after NDMA was set on " + id());
            }
        }
        // 2. !RUNNING: freeze (D12).
        if (cur.running() && !req.running()) {
            step(TransitionStep.FREEZE);
            engineRunning = false;
            Quiesce quiesce = awaitEngineIdle();
            if (quiesce == Quiesce.INTERRUPTED) {
                return abandoned(cur);
            }
            if (quiesce == Quiesce.TIMED_OUT) {
                return failed(cur, TransitionFailure.QUIESCE_TIMEOUT, "work still in flight after " + id() + " was stopped");
            }
        }
        // 3. SAVING|!RUNNING: from here the rest of the stream is fixed (W2, W4).
        if (req.stopCopy() && !cur.stopCopy()) {
            step(TransitionStep.CAPTURE);
            if (save == null) {
                save = new SaveStream(image, config.preCopy());
            }
            save.enterStopCopy();
        }
        // D9: clearing SAVING ends the save session and discards the window.
        if (cur.saving() && !req.saving()) {
            step(TransitionStep.SAVE_END);
            discardWindow();
        }
        // 4. RESUMING set: the device resets itself and opens the window (D7).
        if (req.resuming() && !cur.resuming()) {
            step(TransitionStep.RESUME_OPEN);
            discardWindow();
            resetInternalState();
            load = new LoadStream(image);
        }
        // 5. RESUMING cleared: load everything written, or go to ERROR (D8).
        if (cur.resuming() && !req.resuming()) {
            step(TransitionStep.LOAD);
            String problem = load.finish();
            lastLoaded = load.loadedBytes();
            load = null;
            if (problem != null) {
                return failed(cur, TransitionFailure.LOAD_FAILED, "device " + id() + " could not load its state: " + problem);
            }
        }
        // 6. RUNNING: restart.
        if (req.running() && !cur.running()) {
            step(TransitionStep.RESTART);
            engineRunning = true;
            changed.signalAll();
        }
        // 7. SAVING|RUNNING: pre-copy starts with internal dirty logging (W4).
        if (req.preCopy() && !cur.preCopy()) {
            step(TransitionStep.PRE_COPY_START);
            save = new SaveStream(image, config.preCopy());
            save.startPreCopy();
        }
        // 8. NDMA cleared.
        if (!req.ndma() && cur.ndma()) {
            step(TransitionStep.NDMA_CLEAR);
            engineNdma = false;
            changed.signalAll();
        }
        state = req;
        return new TransitionResult.Succeeded(cur, req);
    }

    /** D13: in ERROR the device starts no DMA, raises no interrupts and takes no MMIO. */
    private TransitionResult.Failed failed(DeviceState cur, TransitionFailure failure, String message) {
        state = DeviceState.ERROR;
        engineRunning = false;
        engineNdma = true;
        discardWindow();
        return new TransitionResult.Failed(cur, failure, message);
    }

    private void step(TransitionStep step) {
        for (TransitionListener listener : listeners) {
            listener.step(this, step);
        }
    }

    /**
     * D2 for an interrupted quiesce: only the gates of steps 1 and 2 were touched, so restoring them
     * leaves the device exactly as it was, and the write fails with the state unchanged. The interrupt
     * stays set for the caller.
     */
    private TransitionResult abandoned(DeviceState cur) {
        engineNdma = cur.ndma();
        engineRunning = cur.running();
        changed.signalAll();
        return new TransitionResult.Rejected(cur, TransitionFailure.INTERRUPTED,
                "the write to " + id() + " was abandoned while it waited for work in flight: the caller was interrupted");
    }

    private enum Quiesce { IDLE, TIMED_OUT, INTERRUPTED }

    private Quiesce awaitEngineIdle() {
        long remaining = quiesceTimeoutNanos;
        while (inFlight) {
            if (remaining <= 0) {
                return Quiesce.TIMED_OUT;
            }
            try {
                remaining = changed.awaitNanos(remaining);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return Quiesce.INTERRUPTED;
            }
        }
        return Quiesce.IDLE;
    }

    private void discardWindow() {
        save = null;
        if (load != null) {
            lastLoaded = load.loadedBytes();
        }
        load = null;
        memoryLog.stop();
        memoryLog.clear();
    }

    private void resetInternalState() {
        memory.clear();
        memoryLog.stop();
        memoryLog.clear();
        queue.clear();
        resetRegisters();
    }

    // ---- data window (SPEC §2) -----------------------------------------------------------------

    /** Thrown when the window is used outside its session (W6); nothing changed. */
    public static final class WindowException extends IllegalStateException {
        WindowException(String message) {
            super(message);
        }
    }

    /**
     * Reads the next bytes of the migration data into {@code dst} (W1, W2).
     *
     * @return bytes read; 0 when nothing is pending now
     * @throws WindowException outside SAVING (W6)
     */
    public final int readWindow(ByteBuffer dst) {
        lock.lock();
        try {
            if (!state.saving() || state.isError() || save == null) {
                throw new WindowException("the data window of " + id() + " can be read only while SAVING; device is " + state);
            }
            return save.read(dst);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Writes the next chunk of migration data (W5); any chunking is accepted. The device processes the data
     * as it arrives (W7): every record the chunk completes is checked and applied before this returns.
     *
     * <p>Data that fails its checks fails this write: the result is {@link WindowWrite.Failed} and the
     * device is in ERROR, as leaving RESUMING would have left it, only earlier (D8). The caller treats that
     * as a failed load; the window takes no more writes (W6) until a reset (D5). Problems that only the
     * end of the stream can show (an incomplete stream) still surface when RESUMING is cleared (D8).
     *
     * @return {@link WindowWrite.Accepted} with {@link #loadedBytes()}, or {@link WindowWrite.Failed}
     * @throws WindowException outside RESUMING (W6): nothing changed
     */
    public final WindowWrite writeWindow(ByteBuffer src) {
        // Serialised with state writes: a failure moves the device to ERROR, and must not interleave with
        // a state write waiting for work in flight (D2).
        transitions.lock();
        try {
            long start = System.nanoTime();
            DeviceState from;
            TransitionResult.Failed failure;
            long loaded;
            lock.lock();
            try {
                if (!state.resuming() || state.isError() || load == null) {
                    throw new WindowException("the data window of " + id() + " can be written only while RESUMING; device is " + state);
                }
                String problem = load.write(src);
                loaded = load.loadedBytes();
                if (problem == null) {
                    return new WindowWrite.Accepted(loaded);
                }
                from = state;
                step(TransitionStep.LOAD);
                failure = failed(from, TransitionFailure.LOAD_FAILED,
                        "device " + id() + " could not load its state: " + problem);
            } finally {
                lock.unlock();
            }
            long duration = System.nanoTime() - start;
            notifyWorkChanged();
            for (TransitionListener listener : listeners) {
                listener.windowFailed(this, failure, start, duration);
            }
            return new WindowWrite.Failed(loaded, failure);
        } finally {
            transitions.unlock();
        }
    }

    /**
     * W7: bytes of the migration data the resume session has processed, from the stream's first byte: the
     * complete records checked and applied, so always at a record boundary. While RESUMING it grows as
     * data arrives; after RESUMING was left (or the load failed) it keeps what the session processed; it is
     * 0 before any session, from the moment RESUMING is entered again, and after a reset. F7 compares it
     * with the source's {@link #initialData()} end offset.
     */
    public final long loadedBytes() {
        lock.lock();
        try {
            return load != null ? load.loadedBytes() : lastLoaded;
        } finally {
            lock.unlock();
        }
    }

    /** W1: bytes ready to read now (0 outside SAVING). */
    public final long pendingBytes() {
        lock.lock();
        try {
            return saving() ? save.pendingBytes() : 0;
        } finally {
            lock.unlock();
        }
    }

    /** W4: pre-copy data not yet read once. */
    public final long initialBytes() {
        lock.lock();
        try {
            return saving() ? save.initialBytes() : 0;
        } finally {
            lock.unlock();
        }
    }

    /** W4: pre-copy data changed since it was read. */
    public final long dirtyBytes() {
        lock.lock();
        try {
            return saving() ? save.dirtyBytes() : 0;
        } finally {
            lock.unlock();
        }
    }

    /**
     * F7, W8: where the save session's current round of initial data ends in the stream, which round it is
     * (0 for the bulk state pre-copy starts with, one more per re-initialisation), and whether it has been
     * read. {@link InitialData#NONE} outside a save session and for a device without internal logging (W3).
     * The destination has processed the round once its {@link #loadedBytes()} reaches {@code endOffset}.
     */
    public final InitialData initialData() {
        lock.lock();
        try {
            return saving() ? save.initialData() : InitialData.NONE;
        } finally {
            lock.unlock();
        }
    }

    /** Whether stop-and-copy has streamed its end record: the device's data is complete (W1). */
    public final boolean streamFinished() {
        lock.lock();
        try {
            return saving() && save.finished();
        } finally {
            lock.unlock();
        }
    }

    /**
     * W9, v2's {@code VFIO_DEVICE_FEATURE_MIG_DATA_SIZE}: the bytes stop-and-copy will still stream if the
     * device were frozen now, in any state. In stop-and-copy, what is left to read ({@link #pendingBytes});
     * in pre-copy with internal logging, what pre-copy has not sent yet (initial and dirty data, W4) plus the
     * registers and the end record; otherwise (before or outside a save session, or a device without
     * logging, W3) its whole stream. Exact for the state at the call: stop-and-copy streams exactly this
     * many bytes if neither the device nor the reader changes anything before the freeze.
     *
     * <p>Cheap enough to call every few hundred milliseconds whatever the device memory's size: it counts
     * allocated chunks and dirty-log words, and reads no device memory.
     */
    public final long stopCopyBytes() {
        lock.lock();
        try {
            long stateBytes = stateBytes();
            return saving() ? save.stopCopyBytes(stateBytes) : SaveStream.fullStreamBytes(image, stateBytes);
        } finally {
            lock.unlock();
        }
    }

    private boolean saving() {
        return state.saving() && !state.isError() && save != null;
    }

    /** The size {@link Image#captureState()} would have now: registers, then the queued writes. */
    private long stateBytes() {
        return registerBytes() + 4 + (long) queue.size() * QUEUED_WRITE_BYTES;
    }

    // ---- MMIO and the engine -------------------------------------------------------------------

    private record Mmio(int register, long value) {
    }

    /**
     * A register write. While RUNNING (with or without NDMA, D11) it is queued for the engine; while
     * not RUNNING it is not applied and counts as {@code mmioWhileStopped} (D12).
     */
    public final void mmioWrite(int register, long value, MmioSource source) {
        if (register < 0 || register >= REGISTERS) {
            stats.mmioDropped.increment();
            return;
        }
        lock.lock();
        try {
            if (!engineRunning) {
                stats.mmioWhileStopped.increment();
                return;
            }
            if (queue.size() >= MAX_QUEUED) {
                stats.mmioDropped.increment();
                return;
            }
            queue.add(new Mmio(register, value));
            if (source == MmioSource.P2P) {
                stats.p2pReceived.increment();
            } else {
                stats.mmioWrites.increment();
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        notifyWorkChanged();
    }

    /** No work in flight, and nothing queued that could run now. */
    public final boolean isQuiescent() {
        lock.lock();
        try {
            return !inFlight && (queue.isEmpty() || !canWork());
        } finally {
            lock.unlock();
        }
    }

    /** Work queued and not yet taken by the engine. */
    public final int queuedWork() {
        lock.lock();
        try {
            return queue.size();
        } finally {
            lock.unlock();
        }
    }

    private boolean canWork() {
        return engineRunning && !engineNdma && !held && !closed;
    }

    /**
     * The gate of the device's own work: RUNNING (D12), not held by a digest or reset, not closed. NDMA
     * does not close it: the device's own work writes only its own memory, and NDMA stops DMA (D11).
     */
    private boolean canWorkOnOwnMemory() {
        return engineRunning && !held && !closed;
    }

    /**
     * The device's own work, as the guest keeps it busy: {@code writes} writes of {@link #OWN_WRITE_BYTES}
     * seeded random bytes at random places of its device memory, each marking the internal dirty log after
     * the write (W4), like any write of device memory.
     *
     * <p>It is not DMA, so NDMA does not stop it; it runs only while the device is RUNNING (D12). The gate is
     * checked and the writes are done holding the device's lock, which every state write holds while it
     * applies its steps: once a write that freezes the device (step 2) has begun, none of this work runs,
     * with no waiting. The VM's workload calls it only while the vCPUs run, so a paused VM stays still (M5).
     *
     * @return the number of writes done: {@code writes}, or 0 when the device is not RUNNING
     */
    public final int ownWork(int writes, SplittableRandom random) {
        if (writes <= 0) {
            return 0;
        }
        lock.lock();
        try {
            if (!canWorkOnOwnMemory()) {
                return 0;
            }
            long pages = memory.pages();
            for (int i = 0; i < writes; i++) {
                long page = random.nextLong(pages);
                int offset = random.nextInt(PageGeometry.PAGE_SIZE / OWN_WRITE_BYTES) * OWN_WRITE_BYTES;
                random.nextBytes(ownWrite);
                writeDeviceMemory((page << PageGeometry.PAGE_SHIFT) + offset, ownWrite, 0, OWN_WRITE_BYTES);
            }
            stats.ownWrites.add(writes);
            return writes;
        } finally {
            lock.unlock();
        }
    }

    /** Whether the kind has own work paced by time, beyond {@link #ownWork}: a GPU that re-partitions (W8). */
    public boolean hasTimedOwnWork() {
        return false;
    }

    /**
     * Advances the kind's timed own work (a GPU's re-partitioning, W8) by {@code nanos} of working time,
     * gated like {@link #ownWork}: only while RUNNING, NDMA or not, under the device's lock.
     *
     * @return whether it has more to do at once (a re-partition under way), so the caller should not wait
     */
    public final boolean advanceOwnWork(long nanos) {
        lock.lock();
        try {
            return canWorkOnOwnMemory() && ownTimedWork(nanos);
        } finally {
            lock.unlock();
        }
    }

    private void runEngine() {
        while (true) {
            Mmio work;
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
                execute(work.register(), work.value());
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
                LOG.log(System.Logger.Level.WARNING, "device " + id() + " failed an operation", e);
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
        notifyWorkChanged();
    }

    private void notifyWorkChanged() {
        DeviceBus b = bus;
        if (b != null) {
            b.workChanged();
        }
    }

    // ---- what kinds use on the engine thread ---------------------------------------------------

    /** A DMA write through the IOMMU (guest memory, or a peer's register under P2P). */
    protected final void dmaWrite(long iova, byte[] src, int off, int length) throws IommuFault {
        boolean p2p = iova >= Iommu.P2P_WINDOW;
        try {
            bus.dmaWrite(this, iova, src, off, length);
        } catch (IommuFault fault) {
            stats.iommuFaults.increment();
            throw fault;
        }
        if (p2p) {
            stats.p2pIssued.increment();
        } else {
            stats.dmaWrites.increment();
            stats.dmaBytes.add(length);
        }
    }

    /** A DMA read through the IOMMU. With {@code pri}, a page request precedes it. */
    protected final void dmaRead(long iova, byte[] dst, int off, int length) throws IommuFault, InterruptedException {
        if (config.pri()) {
            stats.pageRequests.increment();
            bus.pageRequest(this, iova & ~(long) (PageGeometry.PAGE_SIZE - 1));
        }
        try {
            bus.dmaRead(this, iova, dst, off, length);
        } catch (IommuFault fault) {
            stats.iommuFaults.increment();
            throw fault;
        }
        stats.dmaReads.increment();
        stats.dmaBytes.add(length);
    }

    protected final DeviceBus bus() {
        return bus;
    }

    protected final void raiseInterrupt() {
        stats.interrupts.increment();
    }

    protected final void countP2pUnavailable() {
        stats.p2pUnavailable.increment();
    }

    /** Writes device memory and marks the internal dirty log after the write (W4). */
    protected final void writeDeviceMemory(long address, byte[] src, int off, int length) {
        memory.write(address, src, off, length);
        long first = address >>> PageGeometry.PAGE_SHIFT;
        long last = (address + length - 1) >>> PageGeometry.PAGE_SHIFT;
        memoryLog.markRange(first, last - first + 1);
    }

    protected final void readDeviceMemory(long address, byte[] dst, int off, int length) {
        memory.read(address, dst, off, length);
    }

    protected final long deviceMemoryBytes() {
        return memory.sizeBytes();
    }

    /** The first page at or after {@code from} in allocated device memory, or the page count if none. */
    protected final long nextAllocatedPage(long from) {
        long pages = memory.pages();
        int perChunk = memory.pagesPerChunk();
        for (long page = from; page < pages; page = (page / perChunk + 1) * perChunk) {
            if (memory.isBacked(page)) {
                return page;
            }
        }
        return pages;
    }

    /**
     * W8, for a kind whose bulk state just changed whole (re-initialisation): in a pre-copy session every
     * page becomes initial data again, streamed like the first round, and {@link #initialData()} moves to
     * the next generation. Called with the lock held, from {@link #ownTimedWork}, before the kind rewrites
     * its memory, so that each rewritten page is either ahead of the new round or marked dirty behind it.
     */
    protected final void bulkStateChanged() {
        stats.reinits.increment();
        if (saving()) {
            save.reinit();
        }
    }

    // ---- what each kind implements -------------------------------------------------------------

    /** Runs one queued register write on the engine thread: DMA, interrupts, state changes. */
    protected abstract void execute(int register, long value) throws InterruptedException, IommuFault;

    /**
     * The kind's timed own work, with the device's lock held and only while RUNNING (D12): {@code nanos}
     * of working time passed. Must be short (it holds the lock that MMIO and state writes take): do a
     * bounded step and return true to be called again at once.
     */
    protected boolean ownTimedWork(long nanos) {
        return false;
    }

    /** Size of {@link #writeRegisters} output, for predictions (W9); must be exact. */
    protected abstract int registerBytes();

    protected abstract void writeRegisters(DataOutputStream out) throws IOException;

    /** Reads what {@link #writeRegisters} wrote; throws if it is not a valid register set. */
    protected abstract void readRegisters(DataInputStream in) throws IOException, StreamFormatException;

    protected abstract void resetRegisters();

    /** A doorbell value the synthetic guest driver rings on this kind. */
    public abstract long workloadDoorbell(SplittableRandom random);

    /** Whether this kind writes a peer's doorbell through the IOMMU when asked to (a P2P initiator). */
    public boolean initiatesP2p() {
        return false;
    }

    /** The doorbell that makes this device write a peer's doorbell; only for P2P initiators. */
    public long p2pDoorbell(SplittableRandom random) {
        throw new UnsupportedOperationException(kind() + " devices do not initiate P2P");
    }

    /** Register values worth showing beside the stats (packets, fences, ...). */
    public void describeRegisters(Map<String, Long> out) {
    }

    // ---- state image: migration data and digest ------------------------------------------------

    /**
     * SHA-256 over the device's full migrated state: kind, configuration, registers, queued work and
     * device memory. Waits for work in flight and holds the engine while it reads.
     */
    public final byte[] digest() {
        lock.lock();
        try {
            held = true;
            try {
                while (inFlight) {
                    changed.awaitUninterruptibly();
                }
                MessageDigest sha = sha256();
                sha.update(kind().label().getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                sha.update((byte) 0);
                sha.update(configBytes);
                byte[] registers = image.captureState();
                sha.update(longBytes(registers.length));
                sha.update(registers);
                digestPages(sha, memory);
                return sha.digest();
            } finally {
                held = false;
                changed.signalAll();
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Starts an incremental digest of the device memory ({@link MemoryDigest}): its writes mark the units
     * to hash again from now on. The caller closes it.
     */
    public final MemoryDigest openMemoryDigest() {
        return MemoryDigest.open(memory);
    }

    /**
     * The device's registers and queued work as the STATE record carries them: with the kind, the
     * configuration and the device memory, its full migrated state. Waits for work in flight and holds
     * the engine while it reads, as {@link #digest()} does.
     */
    public final byte[] stateImage() {
        lock.lock();
        try {
            held = true;
            try {
                while (inFlight) {
                    changed.awaitUninterruptibly();
                }
                return image.captureState();
            } finally {
                held = false;
                changed.signalAll();
            }
        } finally {
            lock.unlock();
        }
    }

    /** The canonical configuration the stream carries and checks (D8). */
    public final byte[] configBytes() {
        return configBytes.clone();
    }

    /** Feeds every non-zero page as (index, bytes), then the page count: zero pages cost nothing. */
    public static void digestPages(MessageDigest sha, PageStore pages) {
        for (long page = 0; page < pages.pages(); page++) {
            if (!pages.isBacked(page)) {
                page = (page / pages.pagesPerChunk() + 1) * pages.pagesPerChunk() - 1;
                continue;
            }
            if (!pages.isZeroPage(page)) {
                sha.update(longBytes(page));
                sha.update(pages.pageView(page));
            }
        }
        sha.update(longBytes(pages.pages()));
    }

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every Java platform", e);
        }
    }

    private static byte[] longBytes(long value) {
        return ByteBuffer.allocate(8).putLong(value).array();
    }

    private final class Image implements DeviceImage {
        @Override
        public String kind() {
            return config.kind().label();
        }

        @Override
        public byte[] configBytes() {
            return configBytes;
        }

        @Override
        public PageStore memory() {
            return memory;
        }

        @Override
        public DirtyBitmap memoryLog() {
            return memoryLog;
        }

        @Override
        public byte[] captureState() {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream((int) stateBytes());
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                writeRegisters(out);
                out.writeInt(queue.size());
                for (Mmio work : queue) {
                    out.writeShort(work.register());
                    out.writeLong(work.value());
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return bytes.toByteArray();
        }

        @Override
        public void loadState(byte[] bytes) throws StreamFormatException {
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
                readRegisters(in);
                int queued = in.readInt();
                if (queued < 0 || queued > MAX_QUEUED) {
                    throw new StreamFormatException("queued work count " + queued + " outside [0, " + MAX_QUEUED + "]");
                }
                List<Mmio> work = new ArrayList<>(queued);
                for (int i = 0; i < queued; i++) {
                    int register = in.readUnsignedShort();
                    if (register >= REGISTERS) {
                        throw new StreamFormatException("queued write to register " + register + " outside the BAR");
                    }
                    work.add(new Mmio(register, in.readLong()));
                }
                if (in.available() > 0) {
                    throw new StreamFormatException(in.available() + " trailing bytes after the device state");
                }
                queue.clear();
                queue.addAll(work);
            } catch (EOFException e) {
                throw new StreamFormatException("device state truncated");
            } catch (IOException e) {
                throw new StreamFormatException("device state unreadable: " + e.getMessage());
            }
        }
    }

    @Override
    public String toString() {
        return kind() + " " + id();
    }
}
