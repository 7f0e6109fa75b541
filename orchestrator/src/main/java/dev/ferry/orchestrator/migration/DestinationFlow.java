package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.device.memory.GuestMemory;
import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.GraceStates;
import dev.ferry.device.vm.Vm;
import dev.ferry.orchestrator.Refusal;
import dev.ferry.orchestrator.metrics.FerryMetrics;
import dev.ferry.orchestrator.vm.ManagedVm;
import dev.ferry.orchestrator.vm.VmManager;
import dev.ferry.orchestrator.vm.VmState;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PhaseCode;
import dev.ferry.protocol.PageRouting;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.FrameHandler;
import dev.ferry.protocol.transfer.PageReceiver;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The destination's flow (SPEC §5, R1–R4): check the description and build the empty VM (R1), open
 * every device's window (R2), take pages and device data, load every device and wait at the grace
 * barrier (R3), and after COMMIT run (R4). Before COMMIT any failure, cancel or lost connection
 * discards the copy; after it the destination goes on to R4 whatever happens to the connection.
 *
 * <p>Control frames are handled on this flow's own thread, in order. Device data queued for it is
 * bounded: above 32 MiB the control channel stops reading until the flow has caught up.
 */
final class DestinationFlow implements FrameHandler, Migration.Control {
    private static final Logger LOG = LoggerFactory.getLogger(DestinationFlow.class);
    private static final Duration FRAME_TIMEOUT = Duration.ofSeconds(120);
    private static final long QUEUE_HIGH = 32L << 20;
    private static final long QUEUE_LOW = 8L << 20;


    /** How long a broken data channel waits for the source's reason on the control channel. */
    private static final Duration REASON_WAIT = Duration.ofSeconds(2);


    private final Migration migration;
    private final FrameChannel control;
    private final VmManager vms;
    private final FerryMetrics metrics;
    private final FaultInjector faults;
    private final Inbox inbox = new Inbox();
    private final AtomicLong queuedBytes = new AtomicLong();
    private final Map<Integer, PageReceiver> receivers = new ConcurrentHashMap<>();
    private final AppliedIterations applied = new AppliedIterations();
    private final List<FrameChannel> dataChannels = new java.util.concurrent.CopyOnWriteArrayList<>();
    private volatile boolean discarded;
    private Thread prefault;
    private volatile long prepareArrived;
    /** The flow has ended: frames that still arrive are released, not queued. */
    private volatile boolean finished;
    private long applyNanos;
    private long applyBytes;
    private final CommitPoint commitPoint = new CommitPoint();
    private volatile ManagedVm managed;
    private volatile int channels;
    private List<Device> devices;
    private long[] offsets;
    private boolean[] ended;
    private String sourcePhase = PhaseCode.SETUP.label();
    private VmDescription description;

    DestinationFlow(Migration migration, FrameChannel control, VmManager vms, FerryMetrics metrics, FaultInjector faults) {
        this.migration = migration;
        this.control = control;
        this.vms = vms;
        this.metrics = metrics;
        this.faults = faults;
    }

    // ---- the control channel, on its event loop ------------------------------------------------

    @Override
    public void frameReceived(FrameChannel channel, Frame frame) {
        if (frame instanceof Frame.Prepare) {
            prepareArrived = System.nanoTime();
        }
        if (frame instanceof Frame.DeviceData chunk && queuedBytes.addAndGet(chunk.content().readableBytes()) > QUEUE_HIGH) {
            channel.pauseReading();
        }
        inbox.add(frame);
        if (finished) {
            inbox.drain();
        }
    }

    @Override
    public void channelClosed(FrameChannel channel, ProtocolException cause) {
        inbox.add(new Inbox.Closed(cause, true));
    }

    /** A data channel of this session arrives; called on its event loop, before it is accepted. */
    FrameHandler acceptData(FrameChannel channel) throws ProtocolException {
        ManagedVm vm = managed;
        if (vm == null || channels == 0) {
            throw new ProtocolException(ErrorCode.UNKNOWN_SESSION, "session " + channel.session() + " has not described its VM yet");
        }
        if (channel.index() >= channels) {
            throw new ProtocolException(ErrorCode.BAD_ROLE, "data channel " + channel.index() + " of a session with " + channels);
        }
        GuestMemory memory = vm.vm().memory();
        // Zero pages of the frame being applied; only this channel's event loop touches it.
        long[] zeroPages = new long[1];
        int index = channel.index();
        PageReceiver receiver = new PageReceiver((page, data) -> {
            if (discarded) {
                return;
            }
            if (data == null) {
                memory.loadZeroPage(page);
                zeroPages[0]++;
            } else {
                memory.loadPage(page, data);
            }
        }, (iteration, pages) -> applied.ended(index, iteration, pages));
        if (receivers.putIfAbsent(channel.index(), receiver) != null) {
            throw new ProtocolException(ErrorCode.DUPLICATE_CHANNEL, "data channel " + channel.index() + " is open already");
        }
        channel.setPageRouting(new PageRouting(memory.pages(), channels, channel.index()));
        dataChannels.add(channel);
        return new FrameHandler() {
            @Override
            public void frameReceived(FrameChannel ch, Frame frame) {
                if (frame instanceof Frame.Pages pages) {
                    int count = pages.count();
                    long bytes = pages.content().readableBytes() + 16;
                    receiver.frameReceived(ch, frame);
                    migration.memoryTransferred.addAndGet((long) count * PageGeometry.PAGE_SIZE);
                    migration.zeroPages.addAndGet(zeroPages[0]);
                    zeroPages[0] = 0;
                    migration.wireBytes.addAndGet(bytes);
                    metrics.received(sourcePhase, "memory", bytes);
                    return;
                }
                if (frame instanceof Frame.Abort abort) {
                    inbox.add(abort);
                }
                receiver.frameReceived(ch, frame);
            }

            @Override
            public void channelClosed(FrameChannel ch, ProtocolException cause) {
                receiver.channelClosed(ch, cause);
                applied.closed();
                if (cause != null) {
                    inbox.add(new Inbox.Closed(cause, false));
                }
            }
        };
    }

    // ---- the flow ------------------------------------------------------------------------------

    void run() {
        try {
            MigrationFailure.runSteps(() -> {
                build((Frame.VmDescription) next());
                prepared(receive());
                awaitCommit();
                resume();
                migration.enter(Phase.COMPLETED);
                LOG.info("incoming migration {} of VM {} completed", migration.id(), migration.vm());
            }, this::fail, LOG, "incoming migration " + migration.id());
        } finally {
            finished = true;
            inbox.drain();
        }
    }

    /** R1: the description checked and the empty VM built; R2: every device RESUMING. */
    private void build(Frame.VmDescription described) throws MigrationFailure, InterruptedException {
        description = VmDescription.parse(described.description());
        if (described.pageSize() != PageGeometry.PAGE_SIZE || described.memoryBytes() != description.memoryBytes()) {
            throw new MigrationFailure(MigrationFailure.INCOMPATIBLE, "memory of " + described.memoryBytes() + " bytes in "
                    + described.pageSize() + "-byte pages does not match the description");
        }
        migration.setVm(description.id());
        dev.ferry.device.vm.VmConfig config = description.config();
        try {
            managed = vms.buildIncoming(config, description.slots(), migration.id());
        } catch (Refusal e) {
            String code = switch (e.code()) {
                case "duplicate_id" -> ErrorCode.DUPLICATE_VM.label();
                case "too_many_vms", "insufficient_memory" -> ErrorCode.BUSY.label();
                default -> MigrationFailure.INCOMPATIBLE;
            };
            throw new MigrationFailure(code, e.getMessage());
        }
        Vm vm = managed.vm();
        prepareMemory(vm, description.backed(), description.chunkBytes());
        devices = vm.devices();
        offsets = new long[devices.size()];
        ended = new boolean[devices.size()];
        devices.forEach(d -> d.addListener(migration.trace()));
        migration.setDevices(vm::devices);
        migration.setMemoryTotal(vm.memory().sizeBytes());
        GraceBarrier.apply(devices, d -> DeviceState.RESUMING, "R2 resuming", MigrationFailure.DEVICE_TRANSITION_FAILED);
        channels = described.dataChannels();
        control.send(new Frame.VmAccepted());
        migration.enter(Phase.RESUMING);
        faults.reached(migration, Phase.RESUMING);
    }

    /**
     * Gives the chunks of memory the source says hold data their memory ahead of the pages, so that
     * the event loops that receive pages never stop to allocate or zero memory. Memory the daemon's
     * pool keeps is taken now, before any page arrives, without zeroing: the first pass carries every
     * page (checked at its iteration barrier), so each of its bytes is written before the VM can run.
     * The rest is allocated, zeroed, on a thread of its own while the pages flow.
     */
    private void prepareMemory(Vm vm, java.util.BitSet backed, int chunkBytes) {
        dev.ferry.device.memory.PageStore store = vm.memory().store();
        if (chunkBytes != store.chunkBytes()) {
            return;
        }
        java.util.BitSet rest = new java.util.BitSet();
        for (int chunk = backed.nextSetBit(0); chunk >= 0 && chunk < store.chunks(); chunk = backed.nextSetBit(chunk + 1)) {
            if (!store.allocateChunkForOverwrite(chunk) && !store.chunkBacked(chunk)) {
                rest.set(chunk);
            }
        }
        if (rest.isEmpty()) {
            return;
        }
        prefault = new Thread(() -> {
            for (int chunk = rest.nextSetBit(0); chunk >= 0 && !discarded; chunk = rest.nextSetBit(chunk + 1)) {
                try {
                    store.allocateChunk(chunk);
                } catch (IllegalStateException e) {
                    return;
                }
            }
        }, "ferry-prefault-" + migration.id());
        prefault.setDaemon(true);
        prefault.start();
    }

    /** Device data and progress until PREPARE, which it returns. */
    private Frame.Prepare receive() throws MigrationFailure, InterruptedException {
        while (true) {
            Object item = next();
            if (item instanceof Frame.DeviceData chunk) {
                long t = System.nanoTime();
                applyBytes += chunk.content().readableBytes();
                try {
                    apply(chunk);
                } finally {
                    chunk.release();
                }
                applyNanos += System.nanoTime() - t;
            } else if (item instanceof Frame.DeviceEnd end) {
                int index = deviceIndex(end.device());
                if (end.totalBytes() != offsets[index]) {
                    throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "device " + devices.get(index).id() + " ended at "
                            + end.totalBytes() + " bytes, " + offsets[index] + " arrived");
                }
                ended[index] = true;
            } else if (item instanceof Frame.Phase phase) {
                PhaseCode p = PhaseCode.of(phase.phase());
                sourcePhase = p == null ? sourcePhase : p.label();
            } else if (item instanceof Frame.IterationEnd end) {
                if (PhaseCode.PRECOPY.label().equals(sourcePhase)) {
                    migration.iterations.set(end.iteration() + 1L);
                }
                // The iteration barrier: every control frame before this one is applied; now its pages.
                if (!applied.await(end.iteration(), channels, FRAME_TIMEOUT)) {
                    throw explained(new MigrationFailure(MigrationFailure.CONNECTION_LOST, "the pages of iteration "
                            + end.iteration() + " did not all arrive"));
                }
                long memoryPages = managed.vm().memory().pages();
                if (end.iteration() == 0 && applied.firstPassPages() != memoryPages) {
                    throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "the first pass carried " + applied.firstPassPages()
                            + " pages of " + memoryPages + ": it must carry every page");
                }
                control.send(new Frame.IterationDone(end.iteration()));
            } else if (item instanceof Frame.Prepare prepare) {
                return prepare;
            } else {
                throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "unexpected " + ((Frame) item).type() + " before PREPARE");
            }
        }
    }

    private void apply(Frame.DeviceData chunk) throws MigrationFailure {
        int index = deviceIndex(chunk.device());
        if (chunk.offset() != offsets[index] || ended[index]) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "data of device " + devices.get(index).id() + " at offset "
                    + chunk.offset() + ", expected " + offsets[index]);
        }
        int bytes = chunk.content().readableBytes();
        ByteBuffer window = chunk.content().nioBuffer();
        Device device = devices.get(index);
        faults.deviceData(device.id(), window);
        device.writeWindow(window);
        offsets[index] += bytes;
        migration.deviceSent(device.id(), bytes);
        metrics.received(sourcePhase, "device", bytes);
        if (queuedBytes.addAndGet(-bytes) < QUEUE_LOW && !control.channel().config().isAutoRead()) {
            control.channel().eventLoop().execute(() -> {
                if (queuedBytes.get() < QUEUE_LOW) {
                    control.resumeReading();
                }
            });
        }
    }

    private int deviceIndex(int index) throws MigrationFailure {
        if (index < 0 || index >= devices.size()) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "device index " + index + " of a VM with " + devices.size() + " devices");
        }
        return index;
    }

    /** Every data channel ended, every device's stream ended; R3: load and wait at the barrier; PREPARED. */
    private void prepared(Frame.Prepare prepare) throws MigrationFailure, InterruptedException {
        long start = System.nanoTime();
        long queued = start - prepareArrived;
        if (receivers.size() != channels) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, receivers.size() + " of " + channels + " data channels arrived");
        }
        for (PageReceiver receiver : receivers.values()) {
            try {
                receiver.ended().get(FRAME_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                throw e.getCause() instanceof ProtocolException p ? MigrationFailure.of(p, "data channel")
                        : new MigrationFailure(MigrationFailure.CONNECTION_LOST, "data channel: " + e.getCause());
            } catch (TimeoutException e) {
                throw new MigrationFailure(MigrationFailure.TIMEOUT, "a data channel did not end in time");
            }
        }
        for (int i = 0; i < ended.length; i++) {
            if (!ended[i]) {
                throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "device " + devices.get(i).id() + " sent no end of its data");
            }
        }
        long channelsEnded = System.nanoTime();
        GraceBarrier.apply(devices, d -> GraceStates.resumeGrace(d.config().ndma()), "R3 load and P2P grace",
                MigrationFailure.DEVICE_LOAD_FAILED);
        LOG.debug("incoming migration {}: PREPARE waited {} us behind other frames, data channels ended {} us later,"
                + " devices loaded in {} us; {} device bytes applied in {} us", migration.id(), queued / 1000,
                (channelsEnded - start) / 1000, (System.nanoTime() - channelsEnded) / 1000, applyBytes, applyNanos / 1000);
        migration.enter(Phase.P2P_GRACE);
        faults.reached(migration, Phase.P2P_GRACE);
        byte[] digest = new byte[0];
        if (prepare.verify()) {
            long digestStart = System.nanoTime();
            digest = HexFormat.of().parseHex(managed.vm().digest().vm());
            migration.setVerifyTime(System.nanoTime() - digestStart);
        }
        control.send(new Frame.Prepared(digest, TimeUnit.NANOSECONDS.toMicros(System.nanoTime() - start)));
    }

    private void awaitCommit() throws MigrationFailure, InterruptedException {
        Object item = next();
        while (item instanceof Frame.Phase phase) {
            PhaseCode p = PhaseCode.of(phase.phase());
            sourcePhase = p == null ? sourcePhase : p.label();
            item = next();
        }
        if (!(item instanceof Frame.Commit)) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "expected COMMIT, got " + ((Frame) item).type());
        }
        commitPoint.commit("cancelled before the commit arrived");
        // A hold point for tests: committed, before R4.
        faults.reached(migration, Phase.SWITCHOVER);
    }

    /** R4: every device RUNNING, then the vCPUs if the source's were running; CONFIRM. */
    private void resume() throws MigrationFailure {
        long start = System.nanoTime();
        GraceBarrier.apply(devices, d -> DeviceState.RUNNING, "R4 running", MigrationFailure.DEVICE_TRANSITION_FAILED);
        boolean running = description.vcpusRunning();
        if (running) {
            managed.vm().startVcpus();
        }
        managed.endMigration(running ? VmState.RUNNING : VmState.PAUSED);
        if (control.isOpen()) {
            control.send(new Frame.Confirm(TimeUnit.NANOSECONDS.toMicros(System.nanoTime() - start)));
        }
        control.close();
    }

    // ---- failure, cancel -----------------------------------------------------------------------

    @Override
    public boolean cancel() {
        if (!commitPoint.cancel()) {
            return false;
        }
        inbox.add(new Inbox.Cancelled());
        control.abort(ErrorCode.CANCELLED, "cancelled on the destination");
        return true;
    }

    private void fail(MigrationFailure failure) {
        CommitPoint.Failure state = commitPoint.fail();
        boolean wasCommitted = state.committed();
        boolean wasCancelled = state.byCancel();
        MigrationFailure reason = wasCancelled ? new MigrationFailure(MigrationFailure.CANCELLED, "cancelled") : failure;
        migration.setError(reason.code(), reason.getMessage());
        metrics.migrationFailed("destination", reason.code());
        if (control.isOpen()) {
            control.abort(wasCommitted ? ErrorCode.DESTINATION_FAILED : reason.wireCode(), reason.getMessage());
        }
        ManagedVm vm = managed;
        if (vm != null) {
            if (wasCommitted) {
                // The source committed and will not run the VM: keep what we have for an operator.
                vm.endMigration(VmState.PAUSED);
            } else {
                // F4: the destination discards its copy, once nothing can write into it any more.
                discarded = true;
                closeDataChannels();
                vms.discard(vm);
            }
        }
        LOG.warn("incoming migration {}: {}: {}", migration.id(), reason.code(), reason.getMessage());
        migration.enter(wasCancelled ? Phase.CANCELLED : Phase.FAILED);
    }

    private void closeDataChannels() {
        for (FrameChannel channel : dataChannels) {
            channel.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
        }
        Thread thread = prefault;
        if (thread != null) {
            try {
                thread.join(TimeUnit.SECONDS.toMillis(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private Object next() throws MigrationFailure, InterruptedException {
        Object item = inbox.poll(FRAME_TIMEOUT);
        if (item == null) {
            throw new MigrationFailure(MigrationFailure.TIMEOUT, "nothing from the source for " + FRAME_TIMEOUT.toSeconds() + " s");
        }
        if (item instanceof Frame.Abort abort) {
            throw new MigrationFailure(MigrationFailure.codeOf(abort.code()), "the source aborted: " + abort.message());
        }
        if (item instanceof Inbox.Closed closed) {
            ProtocolException cause = closed.cause() != null ? closed.cause()
                    : new ProtocolException(ErrorCode.CONNECTION_LOST, "the source closed the connection");
            MigrationFailure broken = MigrationFailure.of(cause, "connection from the source");
            throw closed.control() ? broken : explained(broken);
        }
        if (item instanceof Inbox.Cancelled) {
            throw new MigrationFailure(MigrationFailure.CANCELLED, "cancelled");
        }
        return item;
    }

    /** A broken data channel is a symptom: the source's reason, if it sends one soon, says more. */
    private MigrationFailure explained(MigrationFailure symptom) {
        Object reason = inbox.awaitReason(REASON_WAIT);
        if (reason instanceof Frame.Abort abort) {
            return new MigrationFailure(MigrationFailure.codeOf(abort.code()), "the source aborted: " + abort.message());
        }
        return reason instanceof Inbox.Cancelled ? new MigrationFailure(MigrationFailure.CANCELLED, "cancelled") : symptom;
    }

    /** The last iteration each data channel has applied (its DATA_END), for the iteration barrier. */
    private static final class AppliedIterations {
        private final Map<Integer, Integer> ended = new java.util.HashMap<>();
        private long firstPassPages;
        private boolean closed;

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

        /** A data channel closed: nobody waits for it any more. */
        synchronized void closed() {
            closed = true;
            notifyAll();
        }

        /** Waits until {@code channels} data channels have applied {@code iteration}; false if one closed first or in time. */
        synchronized boolean await(int iteration, int channels, Duration timeout) throws InterruptedException {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (!all(iteration, channels)) {
                long left = deadline - System.nanoTime();
                if (closed || left <= 0) {
                    return false;
                }
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
            return true;
        }

        private boolean all(int iteration, int channels) {
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
}
