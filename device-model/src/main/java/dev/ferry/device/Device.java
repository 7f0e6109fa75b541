package dev.ferry.device;

import dev.ferry.device.memory.ChunkPool;
import dev.ferry.device.memory.DirtyBitmap;
import dev.ferry.device.memory.MemoryDigest;
import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.memory.PageStore;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.InitialData;
import dev.ferry.device.migration.MigrationFlags;
import dev.ferry.device.migration.MigrationState;
import dev.ferry.device.migration.NextStateRule;
import dev.ferry.device.migration.TransitionFailure;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.migration.TransitionStep;
import dev.ferry.device.migration.WindowWrite;
import dev.ferry.device.spi.DeviceContext;
import dev.ferry.device.spi.DeviceFunction;
import dev.ferry.device.spi.Registers;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * An emulated device: the one migration core every kind shares around the kind's {@link DeviceFunction}. This
 * class is the device's interface to the VM and the orchestrator; the core's concepts are classes of their own
 * in this package, hidden from a kind's author, who sees only the SPI ({@code dev.ferry.device.spi}):
 * <ul>
 *   <li>{@link StateMachine}: the v1 state bits with their priority order (D1–D10, D13);</li>
 *   <li>{@link DataWindow}: the save and resume sessions (W1–W9);</li>
 *   <li>{@link Engine}: the MMIO queue, the engine thread and the quiesce waits (D11, D12);</li>
 *   <li>{@link StateImage}: the state image codec, the kind's registers and the queued MMIO;</li>
 *   <li>{@link DeviceDigest}: the digest of the migrated state.</li>
 * </ul>
 * The v2 walk (V1–V3) is here, over the state machine's writes.
 *
 * <h2>Threads</h2>
 * <ul>
 *   <li>MMIO writes (from vCPUs, or from peers through the IOMMU) only queue work, under {@link #lock}. The
 *       queue is part of the device's state and is migrated.</li>
 *   <li>The engine thread takes queued work and runs the kind's {@link DeviceFunction#execute}: DMA,
 *       interrupts, internal state changes. It runs only while RUNNING without NDMA. The kind's registers
 *       belong to the engine while it executes, and to whoever holds {@link #lock} while it does not.</li>
 *   <li>The device's own work ({@link #ownWork}, {@link #advanceOwnWork}) runs on the workload's thread
 *       holding {@link #lock}, and only while RUNNING: it is not DMA, so NDMA does not stop it.</li>
 *   <li>State writes, window writes and resets are serialised by {@link #transitions}; they flip the
 *       engine's gates step by step and wait, releasing the lock, for work in flight to finish.</li>
 * </ul>
 * No lock is held while a device DMAs, so a P2P write into a peer, which takes the peer's lock, can never
 * deadlock.
 */
public final class Device implements AutoCloseable {
    /** Register 0: the doorbell; its value is {@code op << 56 | argument}. */
    public static final int REG_DOORBELL = Registers.DOORBELL;
    /** Register 1: guest-physical base of the device's ring area. */
    public static final int REG_RING_BASE = Registers.RING_BASE;
    /** Register 2: size of the ring area in bytes. */
    public static final int REG_RING_SIZE = Registers.RING_SIZE;
    /** Registers in the 4 KiB BAR. */
    public static final int REGISTERS = Registers.COUNT;
    /** Queued MMIO writes beyond this are dropped and counted. */
    public static final int MAX_QUEUED = Engine.MAX_QUEUED;
    /** Bytes of one write of the device's own work; like a vCPU's write, each dirties a whole page. */
    public static final int OWN_WRITE_BYTES = 64;

    /** Device memory is allocated in 64 KiB pieces on first write; untouched pieces stream as zero records. */
    private static final int DEVICE_MEMORY_CHUNK = 64 * 1024;

    private final DeviceConfig config;
    private final int slot;
    private final byte[] configBytes;
    private final PageStore memory;
    private final DirtyBitmap memoryLog;
    private final DeviceStats stats = new DeviceStats();
    private final List<TransitionListener> listeners = new CopyOnWriteArrayList<>();
    private final DeviceFaults faults;

    private final ReentrantLock transitions = new ReentrantLock();
    private final ReentrantLock lock = new ReentrantLock();

    private final DeviceFunction function;
    private final Engine engine;
    private final StateImage image;
    private final DataWindow window;
    private final StateMachine machine;

    // Guarded by lock.
    private final byte[] ownWrite = new byte[OWN_WRITE_BYTES];
    private DeviceBus bus;
    private long windowRead;
    private long windowWritten;

    private Device(DeviceConfig config, int slot, ChunkPool memoryPool) {
        if (slot < 0) {
            throw new IllegalArgumentException("slot must be >= 0: " + slot);
        }
        this.config = config;
        this.slot = slot;
        this.faults = config.faults();
        this.configBytes = config.canonicalBytes();
        // Small device memory is allocated in small pieces as it is written; large memory (a GPU's) in
        // the VM's chunks, from its memory pool.
        this.memory = config.memoryBytes() < memoryPool.chunkBytes()
                ? new PageStore(config.memoryBytes(), DEVICE_MEMORY_CHUNK)
                : new PageStore(config.memoryBytes(), memoryPool.chunkBytes(), memoryPool);
        this.memoryLog = new DirtyBitmap(memory.pages());
        DeviceFunction created;
        try {
            created = config.kind().provider().create(new Context());
        } catch (RuntimeException e) {
            memory.release();
            throw DeviceModelException.invalid("device kind " + config.kind() + " could not create device " + config.id() + ": " + e);
        }
        if (created == null) {
            memory.release();
            throw DeviceModelException.invalid("device kind " + config.kind() + " created no device for " + config.id());
        }
        this.function = created;
        this.engine = new Engine(config.id(), function, stats, lock, this::notifyWorkChanged);
        this.image = new StateImage(config.kind(), configBytes, memory, memoryLog, engine);
        image.bind(function);
        this.window = new DataWindow(image, config.preCopy());
        this.machine = new StateMachine(config, engine, window, image, this::step);
    }

    /** Creates a device of the configured kind, RUNNING and not yet attached to a bus (D5). */
    public static Device create(DeviceConfig config, int slot) {
        return create(config, slot, ChunkPool.NONE);
    }

    /** {@link #create(DeviceConfig, int)} with large device memory from {@code memoryPool}. */
    public static Device create(DeviceConfig config, int slot, ChunkPool memoryPool) {
        return new Device(config, slot, memoryPool);
    }

    // ---- identity ------------------------------------------------------------------------------

    public String id() {
        return config.id();
    }

    public DeviceKind kind() {
        return config.kind();
    }

    public DeviceConfig config() {
        return config;
    }

    /** The device's place in the VM: its ring area and its P2P BAR address follow from it. */
    public int slot() {
        return slot;
    }

    public DeviceStats stats() {
        return stats;
    }

    /** STOP_COPY always; P2P with NDMA; PRE_COPY with internal dirty logging (SPEC §3). */
    public MigrationFlags migrationFlags() {
        return new MigrationFlags(config.ndma(), config.preCopy());
    }

    public void addListener(TransitionListener listener) {
        listeners.add(listener);
    }

    public void removeListener(TransitionListener listener) {
        listeners.remove(listener);
    }

    /** How long NDMA and !RUNNING wait for work in flight before the write fails into ERROR. */
    public void setQuiesceTimeout(long timeout, TimeUnit unit) {
        engine.setQuiesceTimeout(unit.toNanos(timeout));
    }

    /** Attaches the device to its machine and starts its engine. */
    public void attach(DeviceBus deviceBus) {
        lock.lock();
        try {
            if (bus != null) {
                throw new IllegalStateException("device " + id() + " is already attached");
            }
            bus = deviceBus;
            engine.start();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Stops the engine and frees the device memory. Work in flight finishes first; the device takes no
     * further writes, and its data window must not be used any more.
     */
    @Override
    public void close() {
        Thread thread;
        lock.lock();
        try {
            if (engine.closed()) {
                return;
            }
            thread = engine.close();
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

    public DeviceState state() {
        return locked(() -> machine.state());
    }

    /**
     * Writes the v1 {@code device_state} (SPEC §1). Applies the changed bits group by group in the priority
     * order and stops at the first group that fails.
     */
    public TransitionResult setState(DeviceState requested) {
        transitions.lock();
        try {
            long start = System.nanoTime();
            TransitionResult result;
            lock.lock();
            try {
                result = machine.apply(requested);
                if (!saving()) {
                    windowRead = 0;
                }
                if (!window.resumeOpen()) {
                    windowWritten = 0;
                }
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

    /** The groups a write from {@code from} to {@code to} applies, in the priority order (D10). */
    public static List<TransitionStep> priorityOrder(DeviceState from, DeviceState to) {
        return StateMachine.steps(from, to);
    }

    /** The outcome of a v2 request: the states passed through, and where the device is now. */
    public record V2Result(List<MigrationState> path, TransitionResult last, boolean succeeded) {
    }

    /**
     * A v2 state request (SPEC §3): walks single arcs chosen by the kernel's next-state rule (V1), each arc
     * one v1 write. Fails at once, unchanged, for ERROR, a state the device lacks, a current state with no v2
     * twin, or STOP_COPY towards pre-copy (V2). If an arc fails the device stays where that arc left it (V3).
     */
    public V2Result setMigrationState(MigrationState target) {
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
     * D5: from any state, ERROR included, the data window is discarded and the device is RUNNING with its
     * internal state reset.
     */
    public DeviceState reset() {
        transitions.lock();
        try {
            long start = System.nanoTime();
            DeviceState from;
            lock.lock();
            try {
                from = machine.state();
                engine.hold();
                try {
                    machine.reset();
                    windowRead = 0;
                    windowWritten = 0;
                } finally {
                    engine.release();
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

    private void step(TransitionStep step) {
        for (TransitionListener listener : listeners) {
            listener.step(this, step);
        }
    }

    // ---- data window (SPEC §2) -----------------------------------------------------------------

    /** Thrown when the window is used outside its session (W6); nothing changed. */
    public static class WindowException extends IllegalStateException {
        WindowException(String message) {
            super(message);
        }
    }

    /**
     * A read of the data window failed (an injected fault, {@link DeviceFaults#windowReads()}): an I/O error
     * of the window, as a driver's {@code read()} returning {@code -EIO}. The state is unchanged; the save
     * session's data is no longer whole, so the reader must end it (D9) and start again.
     */
    public static final class WindowReadFailed extends WindowException {
        WindowReadFailed(String message) {
            super(message);
        }
    }

    /**
     * Reads the next bytes of the migration data into {@code dst} (W1, W2).
     *
     * @return bytes read; 0 when nothing is pending now
     * @throws WindowException outside SAVING (W6); {@link WindowReadFailed} for an injected failure
     */
    public int readWindow(ByteBuffer dst) {
        lock.lock();
        try {
            if (!saving()) {
                throw new WindowException("the data window of " + id() + " can be read only while SAVING; device is " + machine.state());
            }
            DeviceFaults.WindowFault fault = faults.windowReads();
            if (fault.failAfterBytes() >= 0 && windowRead >= fault.failAfterBytes()) {
                throw new WindowReadFailed("reading the data window of " + id() + " failed after " + windowRead
                        + " bytes (an injected fault)");
            }
            ByteBuffer into = dst;
            if (fault.maxBytes() > 0 && dst.remaining() > fault.maxBytes()) {
                into = dst.slice(dst.position(), fault.maxBytes());
            }
            int start = into.position();
            int n = window.read(into);
            if (into != dst) {
                dst.position(dst.position() + n);
            }
            long corrupt = faults.corruptImageAtByte();
            if (corrupt >= windowRead && corrupt < windowRead + n) {
                int at = start + (int) (corrupt - windowRead);
                into.put(at, (byte) ~into.get(at));
            }
            windowRead += n;
            return n;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Writes the next chunk of migration data (W5); any chunking is accepted. The device processes the data
     * as it arrives (W7): every record the chunk completes is checked and applied before this returns.
     *
     * <p>Data that fails its checks fails this write: the result is {@link WindowWrite.Failed} and the device
     * is in ERROR, as leaving RESUMING would have left it, only earlier (D8). The caller treats that as a
     * failed load; the window takes no more writes (W6) until a reset (D5). Problems that only the end of the
     * stream can show (an incomplete stream) still surface when RESUMING is cleared (D8).
     *
     * <p>A write may be short (an injected fault, {@link DeviceFaults#windowWrites()}): it then takes only the
     * first bytes of {@code src} and leaves its position after them, and the caller writes the rest.
     *
     * @return {@link WindowWrite.Accepted} with {@link #loadedBytes()}, or {@link WindowWrite.Failed}
     * @throws WindowException outside RESUMING (W6): nothing changed
     */
    public WindowWrite writeWindow(ByteBuffer src) {
        // Serialised with state writes: a failure moves the device to ERROR, and must not interleave with
        // a state write waiting for work in flight (D2).
        transitions.lock();
        try {
            long start = System.nanoTime();
            TransitionResult.Failed failure;
            long loaded;
            lock.lock();
            try {
                DeviceState from = machine.state();
                if (!from.resuming() || from.isError() || !window.resumeOpen()) {
                    throw new WindowException("the data window of " + id() + " can be written only while RESUMING; device is " + from);
                }
                DeviceFaults.WindowFault fault = faults.windowWrites();
                String problem;
                if (fault.failAfterBytes() >= 0 && windowWritten + src.remaining() > fault.failAfterBytes()) {
                    problem = "writing the data window failed after " + windowWritten + " bytes (an injected fault)";
                    src.position(src.limit());
                } else {
                    ByteBuffer piece = src;
                    if (fault.maxBytes() > 0 && src.remaining() > fault.maxBytes()) {
                        piece = src.slice(src.position(), fault.maxBytes());
                    }
                    int n = piece.remaining();
                    problem = window.write(piece);
                    if (piece != src) {
                        src.position(src.position() + n);
                    }
                    windowWritten += n;
                }
                loaded = window.loadedBytes();
                if (problem == null) {
                    return new WindowWrite.Accepted(loaded);
                }
                step(TransitionStep.LOAD);
                failure = machine.failed(from, TransitionFailure.LOAD_FAILED, "device " + id() + " could not load its state: " + problem);
                windowWritten = 0;
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
     * complete records checked and applied, so always at a record boundary. While RESUMING it grows as data
     * arrives; after RESUMING was left (or the load failed) it keeps what the session processed; it is 0 before
     * any session, from the moment RESUMING is entered again, and after a reset. F7 compares it with the
     * source's {@link #initialData()} end offset.
     */
    public long loadedBytes() {
        return locked(() -> window.loadedBytes());
    }

    /** W1: bytes ready to read now (0 outside SAVING). */
    public long pendingBytes() {
        return locked(() -> saving() ? window.pendingBytes() : 0);
    }

    /** W4: pre-copy data not yet read once. */
    public long initialBytes() {
        return locked(() -> saving() ? window.initialBytes() : 0);
    }

    /** W4: pre-copy data changed since it was read. */
    public long dirtyBytes() {
        return locked(() -> saving() ? window.dirtyBytes() : 0);
    }

    /**
     * F7, W8: where the save session's current round of initial data ends in the stream, which round it is (0
     * for the bulk state pre-copy starts with, one more per re-initialisation), and whether it has been read.
     * {@link InitialData#NONE} outside a save session and for a device without internal logging (W3). The
     * destination has processed the round once its {@link #loadedBytes()} reaches {@code endOffset}.
     */
    public InitialData initialData() {
        return locked(() -> saving() ? window.initialData() : InitialData.NONE);
    }

    /** Whether stop-and-copy has streamed its end record: the device's data is complete (W1). */
    public boolean streamFinished() {
        return locked(() -> saving() && window.finished());
    }

    /**
     * W9, v2's {@code VFIO_DEVICE_FEATURE_MIG_DATA_SIZE}: the bytes stop-and-copy will still stream if the
     * device were frozen now, in any state. In stop-and-copy, what is left to read ({@link #pendingBytes}); in
     * pre-copy with internal logging, what pre-copy has not sent yet (initial and dirty data, W4) plus the
     * registers and the end record; otherwise (before or outside a save session, or a device without logging,
     * W3) its whole stream. Exact for the state at the call: stop-and-copy streams exactly this many bytes if
     * neither the device nor the reader changes anything before the freeze.
     *
     * <p>Cheap enough to call every few hundred milliseconds whatever the device memory's size: it counts
     * allocated chunks and dirty-log words, and reads no device memory.
     */
    public long stopCopyBytes() {
        return locked(() -> window.stopCopyBytes(saving()));
    }

    /** One read of state guarded by {@code lock}, so that it sees no transition or window access half done. */
    private <T> T locked(Supplier<T> read) {
        lock.lock();
        try {
            return read.get();
        } finally {
            lock.unlock();
        }
    }

    private boolean saving() {
        DeviceState state = machine.state();
        return state.saving() && !state.isError() && window.saveOpen();
    }

    // ---- MMIO and the engine -------------------------------------------------------------------

    /**
     * A register write. While RUNNING (with or without NDMA, D11) it is queued for the engine; while not
     * RUNNING it is not applied and counts as {@code mmioWhileStopped} (D12).
     */
    public void mmioWrite(int register, long value, MmioSource source) {
        if (register < 0 || register >= REGISTERS) {
            stats.mmioDropped.increment();
            return;
        }
        boolean queued;
        lock.lock();
        try {
            queued = engine.enqueue(register, value, source);
        } finally {
            lock.unlock();
        }
        if (queued) {
            notifyWorkChanged();
        }
    }

    /** No work in flight, and nothing queued that could run now. */
    public boolean isQuiescent() {
        return locked(() -> engine.isQuiescent());
    }

    /** Work queued and not yet taken by the engine. */
    public int queuedWork() {
        return locked(() -> engine.queued());
    }

    /**
     * The device's own work, as the guest keeps it busy: {@code writes} writes of {@link #OWN_WRITE_BYTES}
     * seeded random bytes at random places of its device memory, each marking the internal dirty log after the
     * write (W4), like any write of device memory.
     *
     * <p>It is not DMA, so NDMA does not stop it; it runs only while the device is RUNNING (D12). The gate is
     * checked and the writes are done holding the device's lock, which every state write holds while it
     * applies its steps: once a write that freezes the device (step 2) has begun, none of this work runs, with
     * no waiting. The VM's workload calls it only while the vCPUs run, so a paused VM stays still (M5).
     *
     * @return the number of writes done: {@code writes}, or 0 when the device is not RUNNING
     */
    public int ownWork(int writes, SplittableRandom random) {
        if (writes <= 0) {
            return 0;
        }
        lock.lock();
        try {
            if (!engine.canWorkOnOwnMemory()) {
                return 0;
            }
            long pages = memory.pages();
            for (int i = 0; i < writes; i++) {
                long page = random.nextLong(pages);
                int offset = random.nextInt(PageGeometry.PAGE_SIZE / OWN_WRITE_BYTES) * OWN_WRITE_BYTES;
                random.nextBytes(ownWrite);
                writeMemory((page << PageGeometry.PAGE_SHIFT) + offset, ownWrite, 0, OWN_WRITE_BYTES);
            }
            stats.ownWrites.add(writes);
            return writes;
        } finally {
            lock.unlock();
        }
    }

    /** Whether the kind has own work paced by time, beyond {@link #ownWork}: a GPU that re-partitions (W8). */
    public boolean hasTimedOwnWork() {
        return function.hasTimedWork();
    }

    /**
     * Advances the kind's timed own work (a GPU's re-partitioning, W8) by {@code nanos} of working time, gated
     * like {@link #ownWork}: only while RUNNING, NDMA or not, under the device's lock.
     *
     * @return whether it has more to do at once (a re-partition under way), so the caller should not wait
     */
    public boolean advanceOwnWork(long nanos) {
        lock.lock();
        try {
            return engine.canWorkOnOwnMemory() && function.timedWork(nanos);
        } finally {
            lock.unlock();
        }
    }

    private void notifyWorkChanged() {
        DeviceBus b = bus;
        if (b != null) {
            b.workChanged();
        }
    }

    /** Writes device memory and marks the internal dirty log after the write (W4). */
    private void writeMemory(long address, byte[] src, int off, int length) {
        memory.write(address, src, off, length);
        long first = address >>> PageGeometry.PAGE_SHIFT;
        long last = (address + length - 1) >>> PageGeometry.PAGE_SHIFT;
        memoryLog.markRange(first, last - first + 1);
    }

    /** Device memory as the kind sees it, for tests in this package. */
    long deviceMemoryBytes() {
        return memory.sizeBytes();
    }

    void readDeviceMemory(long address, byte[] dst, int off, int length) {
        memory.read(address, dst, off, length);
    }

    void writeDeviceMemory(long address, byte[] src, int off, int length) {
        lock.lock();
        try {
            writeMemory(address, src, off, length);
        } finally {
            lock.unlock();
        }
    }

    // ---- the guest driver's side of the kind ---------------------------------------------------

    /** A doorbell value the synthetic guest driver rings on this kind. */
    public long workloadDoorbell(SplittableRandom random) {
        return function.workloadDoorbell(random);
    }

    /** Whether this kind writes a peer's doorbell through the IOMMU when asked to (a P2P initiator). */
    public boolean initiatesP2p() {
        return function.initiatesP2p();
    }

    /** The doorbell that makes this device write a peer's doorbell; only for P2P initiators. */
    public long p2pDoorbell(SplittableRandom random) {
        if (!function.initiatesP2p()) {
            throw new UnsupportedOperationException(kind() + " devices do not initiate P2P");
        }
        return function.p2pDoorbell(random);
    }

    /** Register values worth showing beside the stats (packets, fences, ...). */
    public void describeRegisters(Map<String, Long> out) {
        lock.lock();
        try {
            function.describeRegisters(out);
        } finally {
            lock.unlock();
        }
    }

    // ---- state image and digest ----------------------------------------------------------------

    /**
     * SHA-256 over the device's full migrated state: kind, configuration, registers, queued work and device
     * memory. Waits for work in flight and holds the engine while it reads.
     */
    public byte[] digest() {
        lock.lock();
        try {
            engine.hold();
            try {
                return DeviceDigest.of(kind().label(), configBytes, image.captureState(), memory);
            } finally {
                engine.release();
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Starts an incremental digest of the device memory ({@link MemoryDigest}): its writes mark the units to
     * hash again from now on. The caller closes it.
     */
    public MemoryDigest openMemoryDigest() {
        return MemoryDigest.open(memory);
    }

    /**
     * The device's registers and queued work as the STATE record carries them: with the kind, the
     * configuration and the device memory, its full migrated state. Waits for work in flight and holds the
     * engine while it reads, as {@link #digest()} does.
     */
    public byte[] stateImage() {
        lock.lock();
        try {
            engine.hold();
            try {
                return image.captureState();
            } finally {
                engine.release();
            }
        } finally {
            lock.unlock();
        }
    }

    /** The canonical configuration the stream carries and checks (D8). */
    public byte[] configBytes() {
        return configBytes.clone();
    }

    @Override
    public String toString() {
        return kind() + " " + id();
    }

    /** What the core gives the kind's function (the SPI's {@link DeviceContext}). */
    private final class Context implements DeviceContext {
        @Override
        public DeviceConfig config() {
            return config;
        }

        @Override
        public void dmaWrite(long iova, byte[] src, int off, int length) throws IommuFault {
            boolean p2p = iova >= Iommu.P2P_WINDOW;
            try {
                bus.dmaWrite(Device.this, iova, src, off, length);
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

        @Override
        public void dmaRead(long iova, byte[] dst, int off, int length) throws IommuFault, InterruptedException {
            if (config.pri()) {
                stats.pageRequests.increment();
                bus.pageRequest(Device.this, iova & ~(long) (PageGeometry.PAGE_SIZE - 1));
            }
            try {
                bus.dmaRead(Device.this, iova, dst, off, length);
            } catch (IommuFault fault) {
                stats.iommuFaults.increment();
                throw fault;
            }
            stats.dmaReads.increment();
            stats.dmaBytes.add(length);
        }

        @Override
        public long guestMemoryBytes() {
            return bus.guestMemoryBytes();
        }

        @Override
        public List<Long> peerDoorbells() {
            return bus.peerDoorbells(Device.this);
        }

        @Override
        public void raiseInterrupt() {
            stats.interrupts.increment();
        }

        @Override
        public void countP2pUnavailable() {
            stats.p2pUnavailable.increment();
        }

        @Override
        public long memoryBytes() {
            return memory.sizeBytes();
        }

        @Override
        public void writeMemory(long address, byte[] src, int off, int length) {
            Device.this.writeMemory(address, src, off, length);
        }

        @Override
        public void readMemory(long address, byte[] dst, int off, int length) {
            memory.read(address, dst, off, length);
        }

        @Override
        public long nextAllocatedPage(long from) {
            long pages = memory.pages();
            int perChunk = memory.pagesPerChunk();
            for (long page = from; page < pages; page = (page / perChunk + 1) * perChunk) {
                if (memory.isBacked(page)) {
                    return page;
                }
            }
            return pages;
        }

        /** Called with the lock held, from the function's timed work. */
        @Override
        public void bulkStateChanged() {
            stats.reinits.increment();
            if (saving()) {
                window.bulkStateChanged();
            }
        }
    }
}
