package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.memory.PageStore;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.GraceStates;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.orchestrator.Refusal;
import dev.ferry.orchestrator.capture.Capture;
import dev.ferry.orchestrator.capture.Captures;
import dev.ferry.orchestrator.metrics.FerryMetrics;
import dev.ferry.orchestrator.vm.ManagedVm;
import dev.ferry.orchestrator.vm.VmManager;
import dev.ferry.orchestrator.vm.VmState;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PhaseCode;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.capture.CaptureFormat;
import dev.ferry.protocol.capture.CaptureTap;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.FrameHandler;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The resume flow (SPEC §5, R1–R4) on the destination, one step per phase of
 * {@link DestinationPhase}: setup (R1: the description checked, the empty VM built); resuming (R2:
 * every device RESUMING; pages and device data arrive, iteration barriers answered); p2p_grace (R3:
 * every page and every device's data complete (F11), every device loaded and in its grace state);
 * then, after COMMIT, R4: every device RUNNING and the vCPUs as the source's were; CONFIRM. Before
 * COMMIT any failure, cancel or lost connection discards the copy (F4); after it the destination goes
 * on to R4 whatever happens to the connection.
 *
 * <p>Control frames are handled on this flow's own thread, in order; they are small. Pages and device
 * data arrive on the data channels and are applied on their event loops ({@link IncomingMemory},
 * {@link IncomingDevices}).
 */
final class ResumeFlow implements FrameHandler, Migration.Control {
    private static final Logger LOG = LoggerFactory.getLogger(ResumeFlow.class);

    private final Migration migration;
    private final FrameChannel control;
    private final VmManager vms;
    private final FerryMetrics metrics;
    private final FlowHooks hooks;
    private final ScheduledExecutorService scheduler;
    private final Duration describeTimeout;
    private final Compatibility compatibility;
    private final Captures captures;
    private final PeerReplies replies = new PeerReplies("source");
    private final FlowSteps steps = new FlowSteps();
    private final CommitPoint commitPoint = new CommitPoint();
    private volatile IncomingMemory incoming;
    private volatile IncomingDevices deviceData;
    private volatile ManagedVm managed;
    private volatile String sourcePhase = PhaseCode.SETUP.label();
    private ScheduledFuture<?> deadline;
    private Thread prefault;
    private volatile boolean prefaultStopped;
    private List<Device> devices = List.of();
    private VmManifest manifest;
    /** With verify (announced in the description): the digest, refreshed after every iteration and while the last lands. */
    private Verification verification;
    /** What the control channel's capture kept until the description says whether to capture. */
    private volatile CaptureTap pendingCapture;
    /** Where this side captures the session, when the source asked for it. */
    private volatile Capture capture;

    /**
     * @param describeTimeout how long the source may take to describe its VM once its control channel is open
     */
    ResumeFlow(Migration migration, FrameChannel control, VmManager vms, FerryMetrics metrics, FlowHooks hooks,
               ScheduledExecutorService scheduler, Duration describeTimeout, Compatibility compatibility, Captures captures) {
        this.migration = migration;
        this.control = control;
        this.vms = vms;
        this.metrics = metrics;
        this.hooks = hooks;
        this.scheduler = scheduler;
        this.describeTimeout = describeTimeout;
        this.compatibility = compatibility;
        this.captures = captures;
    }

    /** The control channel's frames are kept by {@code tap} until the description says whether to capture them. */
    void captureFrom(CaptureTap tap) {
        pendingCapture = tap;
    }

    // ---- the control channel, on its event loop ------------------------------------------------

    @Override
    public void frameReceived(FrameChannel channel, Frame frame) {
        replies.add(frame);
        if (frame instanceof Frame.Abort) {
            abandon();
        }
    }

    @Override
    public void channelClosed(FrameChannel channel, ProtocolException cause) {
        replies.add(new PeerReplies.Closed(cause, true));
        abandon();
    }

    /** The session is over from the source's side: a wait on the data channels must not outlast it. */
    private void abandon() {
        IncomingMemory memory = incoming;
        if (memory != null) {
            memory.abandon();
        }
    }

    /** A data channel of this session arrives; on its event loop, before it is accepted. */
    FrameHandler acceptData(FrameChannel channel) throws ProtocolException {
        IncomingMemory memory = incoming;
        if (memory == null) {
            throw new ProtocolException(ErrorCode.UNKNOWN_SESSION, "session " + channel.session() + " has not described its VM yet");
        }
        FrameHandler handler = memory.accept(channel);
        Capture target = capture;
        if (target != null) {
            target.tap(channel);
        }
        return handler;
    }

    // ---- the flow ------------------------------------------------------------------------------

    void run() {
        try {
            steps.run(() -> {
                Frame first = replies.next(System.nanoTime() + describeTimeout.toNanos());
                if (!(first instanceof Frame.VmDescription described)) {
                    throw new MigrationFailure(first == null ? MigrationFailure.TIMEOUT : MigrationFailure.PROTOCOL_ERROR,
                            first == null ? "no VM description within " + describeTimeout.toMillis() + " ms" : "expected VM_DESCRIPTION");
                }
                if (!build(described)) {
                    migration.enter(DestinationPhase.COMPLETED);
                    LOG.info("dry run {} of VM {}: this daemon can host it", migration.id(), migration.vm());
                    return;
                }
                prepared(receive());
                awaitCommit();
                resume();
                migration.enter(DestinationPhase.COMPLETED);
                LOG.info("incoming migration {} of VM {} completed", migration.id(), migration.vm());
            }, this::fail, LOG, "incoming migration " + migration.id());
        } finally {
            if (deadline != null) {
                deadline.cancel(false);
            }
            stopPrefault();
            if (verification != null) {
                verification.close();
            }
            // The VM outlives its migration here: its devices must not keep feeding this trace.
            devices.forEach(d -> d.removeListener(migration.trace()));
            replies.close();
            CaptureTap undecided = pendingCapture;
            if (undecided != null) {
                undecided.decline();
            }
            if (capture != null) {
                capture.finish(migration.outcome());
            }
        }
    }

    /**
     * R1: the description checked (F8) and the empty VM built; R2: every device RESUMING. A dry run
     * stops after the check; returns whether the migration goes on.
     */
    private boolean build(Frame.VmDescription described) throws MigrationFailure, InterruptedException {
        long describedAt = System.nanoTime();
        manifest = VmManifest.parse(described.description());
        if (described.pageSize() != PageGeometry.PAGE_SIZE || described.memoryBytes() != manifest.memoryBytes()) {
            throw new MigrationFailure(MigrationFailure.INCOMPATIBLE, "memory of " + described.memoryBytes() + " bytes in "
                    + described.pageSize() + "-byte pages does not match the description");
        }
        if (manifest.compression() != null) {
            // F8: pages will come compressed, and a codec this daemon cannot run fails now, before anything is
            // allocated or moves, not at the first page.
            try {
                dev.ferry.protocol.compression.PageCodec.of(manifest.compression()).check();
            } catch (IllegalArgumentException | IllegalStateException e) {
                throw new MigrationFailure(MigrationFailure.INCOMPATIBLE, "page data comes compressed and " + e.getMessage());
            }
        }
        migration.setVm(manifest.id());
        if (manifest.dryRun()) {
            migration.markDryRun();
        }
        if (manifest.source() != null) {
            migration.setPeer(manifest.source());
        }
        decideCapture();
        // The source's own limit holds here too: a source that stays connected but never finishes
        // cannot hold this daemon's memory for longer than it said it would take.
        deadline = scheduler.schedule(() -> cancel(MigrationFailure.TIMEOUT), manifest.timeoutMs(), TimeUnit.MILLISECONDS);
        // F8: every device is checked before anything is allocated; the first that does not fit is named.
        Compatibility.Refusal refusal = compatibility.check(manifest.devices());
        if (refusal != null) {
            control.send(new Frame.VmRefused(ErrorCode.INCOMPATIBLE_DEVICE, refusal.device(), refusal.field(), refusal.reason()));
            throw new MigrationFailure(MigrationFailure.INCOMPATIBLE_DEVICE, "this daemon cannot host " + refusal.describe(),
                    Map.of("device", refusal.device(), "field", refusal.field(), "reason", refusal.reason()));
        }
        VmConfig config = manifest.config(compatibility.kinds());
        if (manifest.dryRun()) {
            control.send(new Frame.VmAccepted());
            return false;
        }
        try {
            managed = vms.buildIncoming(config, manifest.slots(), migration.id());
        } catch (Refusal e) {
            String code = switch (e.code()) {
                case "duplicate_id" -> ErrorCode.DUPLICATE_VM.label();
                case "too_many_vms", "insufficient_memory" -> ErrorCode.BUSY.label();
                default -> MigrationFailure.INCOMPATIBLE;
            };
            throw new MigrationFailure(code, e.getMessage());
        }
        Vm vm = managed.vm();
        prepareMemory(vm, manifest.backed(), manifest.chunkBytes());
        devices = vm.devices();
        if (manifest.verify()) {
            // Before the first page: every write from here on is one the digest follows.
            verification = Verification.open(vm);
        }
        devices.forEach(d -> d.addListener(migration.trace()));
        migration.setDevices(vm::devices);
        migration.setMemoryTotal(vm.memory().sizeBytes());
        GraceBarrier.apply(migration, devices, d -> DeviceState.RESUMING, "R2 resuming", MigrationFailure.DEVICE_TRANSITION_FAILED);
        deviceData = new IncomingDevices(devices, described.dataChannels(), control, migration, metrics, () -> sourcePhase, hooks,
                replies, this::abandon);
        incoming = new IncomingMemory(vm.memory(), described.dataChannels(), migration, metrics, () -> sourcePhase, replies,
                deviceData);
        // The destination's setup: from the description to an empty VM ready for the first page.
        migration.setSetupTime(System.nanoTime() - describedAt);
        control.send(new Frame.VmAccepted());
        migration.enter(DestinationPhase.RESUMING);
        hooks.entered(migration, DestinationPhase.RESUMING);
        return true;
    }

    /**
     * The source's description asks for a capture, and this daemon has a capture directory: the session
     * is captured from its first frame (which the control channel's tap kept), data channels as they
     * join. Otherwise what was kept is let go.
     */
    private void decideCapture() {
        CaptureTap pending = pendingCapture;
        if (pending == null) {
            return;
        }
        pendingCapture = null;
        if (!manifest.capture()) {
            pending.decline();
            return;
        }
        capture = captures.open(migration.id(), CaptureFormat.Side.DESTINATION, control.session(), manifest.id(),
                manifest.capturePages(), migration.startNanos());
        migration.setCapture(capture);
        capture.attach(pending);
    }

    /**
     * Gives the chunks of memory the source says hold data their memory ahead of the pages, so that
     * the event loops that receive pages never stop to allocate or zero memory. Memory the daemon's
     * pool keeps is taken now, before any page arrives, without zeroing: every page must arrive
     * before the VM is built (F11), so each of its bytes is overwritten before the VM can run or be
     * read. The rest is allocated, zeroed, on a thread of its own while the pages flow.
     */
    private void prepareMemory(Vm vm, BitSet backed, int chunkBytes) {
        PageStore store = vm.memory().store();
        if (chunkBytes != store.chunkBytes()) {
            return;
        }
        BitSet rest = new BitSet();
        for (int chunk = backed.nextSetBit(0); chunk >= 0 && chunk < store.chunks(); chunk = backed.nextSetBit(chunk + 1)) {
            if (!store.allocateChunkForOverwrite(chunk) && !store.chunkBacked(chunk)) {
                rest.set(chunk);
            }
        }
        if (rest.isEmpty()) {
            return;
        }
        prefault = new Thread(() -> {
            for (int chunk = rest.nextSetBit(0); chunk >= 0 && !prefaultStopped; chunk = rest.nextSetBit(chunk + 1)) {
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

    private void stopPrefault() {
        prefaultStopped = true;
        Thread thread = prefault;
        if (thread != null) {
            boolean interrupted = false;
            while (true) {
                try {
                    thread.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Device data ends, initial-data announcements and progress until PREPARE, which it returns. */
    private Frame.Prepare receive() throws MigrationFailure, InterruptedException {
        while (true) {
            Frame frame = replies.next(hashingAsPagesLand() ? System.nanoTime() + HASH_SLICE_NANOS : Long.MAX_VALUE);
            if (frame == null) {
                verification.refresh();
                continue;
            }
            if (frame instanceof Frame.DeviceEnd end) {
                deviceData.ended(end);
            } else if (frame instanceof Frame.DeviceInitial initial) {
                deviceData.announced(initial);
            } else if (frame instanceof Frame.Phase phase) {
                notePhase(phase);
            } else if (frame instanceof Frame.IterationEnd end) {
                iterationEnded(end);
            } else if (frame instanceof Frame.Prepare prepare) {
                return prepare;
            } else {
                io.netty.util.ReferenceCountUtil.release(frame);
                throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "unexpected " + frame.type() + " on the control channel"
                        + " before PREPARE (device data travels on the data channels)");
            }
        }
    }

    /** The iteration barrier: every control frame before this one is applied; now its pages, then ITERATION_DONE. */
    private void iterationEnded(Frame.IterationEnd end) throws MigrationFailure, InterruptedException {
        if (PhaseCode.PRECOPY.label().equals(sourcePhase)) {
            migration.setIterations(end.iteration() + 1L);
        }
        boolean precopy = PhaseCode.PRECOPY.label().equals(sourcePhase);
        if (!awaitPages(end.iteration(), precopy)) {
            throw replies.explain(new PeerReplies.Closed(new ProtocolException(ErrorCode.CONNECTION_LOST,
                    "the pages of iteration " + end.iteration() + " did not all arrive"), false));
        }
        long memoryPages = managed.vm().memory().pages();
        if (end.iteration() == 0 && incoming.barrier().firstPassPages() != memoryPages) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "the first pass carried " + incoming.barrier().firstPassPages()
                    + " pages of " + memoryPages + ": it must carry every page");
        }
        // With verify, a pre-copy iteration is hashed before it is acknowledged: the source then moves on
        // knowing that the frozen-point digest will cost only what comes after (its F9 estimate counts on
        // it). The last iteration, sent with the VM stopped, is left to the frozen-point digest, which is
        // where its cost belongs (verifyMs).
        long verifyNanos = verification == null || !precopy ? 0 : verification.refresh();
        control.send(new Frame.IterationDone(end.iteration(), TimeUnit.NANOSECONDS.toMicros(verifyNanos), deviceData.loads()));
    }

    /**
     * Waits for every page of {@code iteration}. With verify, the last iteration's pages are hashed while
     * they land, a slice at a time (from the start of stop-and-copy on, {@link #hashingAsPagesLand}),
     * rather than all after the last one: this side's frozen-point digest then covers only the last
     * slice and what R3's load writes, and the hashing runs beside the final transfer (on another core,
     * when there is one) instead of after it, in the downtime.
     */
    private boolean awaitPages(int iteration, boolean precopy) throws MigrationFailure, InterruptedException {
        IterationBarrier barrier = incoming.barrier();
        if (verification == null || precopy) {
            return barrier.await(iteration, incoming.channels());
        }
        IterationBarrier.Wait wait;
        while ((wait = barrier.await(iteration, incoming.channels(), HASH_SLICE_NANOS)) == IterationBarrier.Wait.PENDING) {
            verification.refresh();
        }
        return wait == IterationBarrier.Wait.REACHED;
    }

    /** With verify, how long pages of the last iteration land between two hashings of what changed. */
    private static final long HASH_SLICE_NANOS = TimeUnit.MILLISECONDS.toNanos(1);

    /**
     * With verify, from the source's stop-and-copy on, this side hashes what landed a slice at a time
     * while it waits for the next control frame too, and not only once ITERATION_END is in: the source
     * ends an iteration once its pages are written, and on a fast link most of them have landed by then,
     * which left their hashing to the frozen point (by hand, in four verified migrations of sixteen,
     * 13–15 MiB hashed there in 3.4–5.6 ms).
     */
    private boolean hashingAsPagesLand() {
        return verification != null && PhaseCode.STOP_COPY.label().equals(sourcePhase);
    }

    private void notePhase(Frame.Phase phase) {
        PhaseCode code = PhaseCode.of(phase.phase());
        sourcePhase = code == null ? sourcePhase : code.label();
    }

    /**
     * F11, then R3: every data channel ended, every page and every device's stream complete; every
     * device loaded and in its grace state; PREPARED.
     */
    private void prepared(Frame.Prepare prepare) throws MigrationFailure, InterruptedException {
        long start = System.nanoTime();
        deviceData.prepare();
        incoming.awaitChannelsEnded();
        long torn = incoming.tornPages();
        if (torn > 0) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "pages that did not match their checksums and that no"
                    + " later pass sent again: " + torn + " (the first is page " + incoming.firstTornPage() + "); a change the"
                    + " source's dirty log does not explain, or damage on the way; a VM is built only from a complete stream (F11)");
        }
        long missing = incoming.missingPages();
        if (missing > 0) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "PREPARE before the stream was complete: " + missing + " of "
                    + managed.vm().memory().pages() + " pages never arrived (the first is page " + incoming.firstMissingPage()
                    + "); a VM is built only from a complete stream (F11)");
        }
        MigrationFailure incomplete = deviceData.incomplete();
        if (incomplete != null) {
            throw incomplete;
        }
        GraceBarrier.Timing load = GraceBarrier.apply(migration, devices, d -> GraceStates.resumeGrace(d.config().ndma()),
                "R3 load and P2P grace", MigrationFailure.DEVICE_LOAD_FAILED);
        migration.enter(DestinationPhase.P2P_GRACE);
        hooks.entered(migration, DestinationPhase.P2P_GRACE);
        byte[] digest = new byte[0];
        if (prepare.verify()) {
            if (verification == null) {
                throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "PREPARE asks for a digest the VM description did not announce");
            }
            digest = verification.frozen(migration);
        }
        for (int i = 0; i < devices.size(); i++) {
            Device device = devices.get(i);
            migration.deviceDowntime(device.id(), device.kind().label(),
                    new MigrationView.DeviceDowntime(null, null, null, null, load.eachNanos()[i] / 1e6, null));
        }
        control.send(new Frame.Prepared(digest, TimeUnit.NANOSECONDS.toMicros(System.nanoTime() - start), micros(load)));
    }

    private void awaitCommit() throws MigrationFailure, InterruptedException {
        Frame frame = replies.next(Long.MAX_VALUE);
        while (frame instanceof Frame.Phase phase) {
            notePhase(phase);
            frame = replies.next(Long.MAX_VALUE);
        }
        if (!(frame instanceof Frame.Commit)) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "expected COMMIT, got " + frame.type());
        }
        commitPoint.commit();
        if (deadline != null) {
            deadline.cancel(false);
        }
        hooks.committed(migration);
    }

    /** R4: every device RUNNING, then the vCPUs if the source's were running; CONFIRM. */
    private void resume() throws MigrationFailure {
        long start = System.nanoTime();
        GraceBarrier.Timing resumed = GraceBarrier.apply(migration, devices, d -> DeviceState.RUNNING, "R4 running",
                MigrationFailure.DEVICE_TRANSITION_FAILED);
        boolean running = manifest.vcpusRunning();
        if (running) {
            managed.vm().startVcpus();
        }
        managed.endMigration(running ? VmState.RUNNING : VmState.PAUSED);
        for (int i = 0; i < devices.size(); i++) {
            migration.deviceResumed(devices.get(i).id(), resumed.eachNanos()[i] / 1e6);
        }
        if (control.isOpen()) {
            control.send(new Frame.Confirm(TimeUnit.NANOSECONDS.toMicros(System.nanoTime() - start), micros(resumed)));
        }
        control.close();
        incoming.closeAll();
    }

    /** Each device's part of a barrier, in microseconds, in the description's order (F6). */
    private static List<Long> micros(GraceBarrier.Timing timing) {
        List<Long> micros = new java.util.ArrayList<>(timing.eachNanos().length);
        for (long nanos : timing.eachNanos()) {
            micros.add(TimeUnit.NANOSECONDS.toMicros(nanos));
        }
        return micros;
    }

    // ---- stop, failure -------------------------------------------------------------------------

    @Override
    public boolean cancel(String reason) {
        try {
            if (!commitPoint.cancel(reason, 0)) {
                return false;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        replies.add(new PeerReplies.Stopped(reason));
        steps.interrupt();
        return true;
    }

    private void fail(MigrationFailure failure) {
        CommitPoint.Failure state = commitPoint.fail();
        MigrationFailure reason = state.byCancel() ? stopped(state.cancelReason()) : failure;
        migration.setError(reason);
        if (!migration.dryRun()) {
            metrics.migrationFailed(Role.DESTINATION.label(), reason.code());
        }
        ErrorCode wire = state.committed() ? ErrorCode.DESTINATION_FAILED : reason.wireCode();
        control.abortNow(wire, reason.getMessage()).awaitUninterruptibly(5, TimeUnit.SECONDS);
        IncomingMemory memory = incoming;
        ManagedVm vm = managed;
        if (state.committed()) {
            // The source committed and will not run the VM: keep what is here for an operator.
            if (memory != null) {
                memory.closeAll();
            }
            IncomingDevices data = deviceData;
            if (data != null) {
                data.discard();
            }
            if (vm != null) {
                vm.hold(migration.id(), "destination_failed");
            }
        } else {
            // F4: the destination discards its copy, once nothing writes into it any more.
            if (memory != null) {
                memory.discard();
            }
            IncomingDevices data = deviceData;
            if (data != null) {
                data.discard();
            }
            stopPrefault();
            if (vm != null) {
                vms.discard(vm);
            }
        }
        LOG.warn("incoming migration {}: {}: {}", migration.id(), reason.code(), reason.getMessage());
        boolean stoppedByOperator = reason.code().equals(MigrationFailure.CANCELLED) || reason.code().equals(MigrationFailure.SHUTDOWN);
        migration.enter(stoppedByOperator ? DestinationPhase.CANCELLED : DestinationPhase.FAILED);
    }

    private MigrationFailure stopped(String reason) {
        return switch (reason) {
            case MigrationFailure.SHUTDOWN -> new MigrationFailure(MigrationFailure.SHUTDOWN, "ferryd is shutting down");
            case MigrationFailure.TIMEOUT -> new MigrationFailure(MigrationFailure.TIMEOUT, "the source's timeoutMs "
                    + (manifest == null ? "" : manifest.timeoutMs() + " ") + "passed before the commit");
            default -> new MigrationFailure(MigrationFailure.CANCELLED, "cancelled on the destination");
        };
    }
}
