package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.device.memory.DirtyBitmap;
import dev.ferry.device.memory.GuestMemory;
import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.GraceStates;
import dev.ferry.device.vm.Vm;
import dev.ferry.orchestrator.metrics.FerryMetrics;
import dev.ferry.orchestrator.vm.ManagedVm;
import dev.ferry.orchestrator.vm.VmState;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameType;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.TrafficMeter;
import dev.ferry.protocol.net.ProtocolClient;
import dev.ferry.protocol.transfer.PageSender;
import dev.ferry.protocol.transfer.PageSet;
import dev.ferry.protocol.transfer.PageSource;
import dev.ferry.protocol.transfer.RateLimiter;
import io.netty.channel.ChannelFuture;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The save flow (SPEC §5, S1–S6) on the source, one step per phase of {@link SourcePhase}: setup;
 * precopy (S1, the first pass over all of memory, then S2 iterations until F3 converges); viommu_grace
 * (S3); p2p_grace (S4: the vCPUs stop and downtime begins, F6); stop_copy (S5); switchover (S6).
 * Until COMMIT is written any failure, cancel or shutdown rolls back (F4): the session is closed,
 * the flow's workers have ended, then {@link Rollback} restores the VM. After it, the source never
 * restarts the VM by itself (F5): without the destination's confirmation the VM is held, stopped, for
 * an operator.
 *
 * <p>Every wait here lasts only while the destination is alive (its channels' keepalives) and ends at
 * once when the flow is stopped (SPEC F12); see {@link FlowSteps}.
 */
final class SaveFlow implements Migration.Control {
    private static final Logger LOG = LoggerFactory.getLogger(SaveFlow.class);
    /** A page on the wire: its entry and its bytes. */
    private static final long PAGE_WIRE_BYTES = 8 + PageGeometry.PAGE_SIZE;
    /** A zero page on the wire: its entry only. */
    private static final long ZERO_PAGE_WIRE_BYTES = 8;
    /**
     * How long COMMIT may take to be written. It is the only frame in flight then (everything before
     * it was acknowledged by PREPARED), so on a live connection it takes microseconds; one that does
     * not leave in this time is withdrawn, and the migration rolls back.
     */
    private static final long COMMIT_WRITE_MILLIS = 1_000;
    /** How long a cancel waits for a COMMIT being written; longer than {@link #COMMIT_WRITE_MILLIS}. */
    private static final long CANCEL_DURING_COMMIT_MILLIS = 2 * COMMIT_WRITE_MILLIS;
    private static final ByteBuffer ZERO_PAGE = ByteBuffer.allocateDirect(PageGeometry.PAGE_SIZE).asReadOnlyBuffer();
    /** How long the source waits for a switchover acknowledgement before it makes another pass (F7). */
    private static final long ACK_POLL_MILLIS = 50;

    /** What the source waits for besides liveness: the destination's confirmation after COMMIT (F5). */
    record Timeouts(Duration switchover) {
    }

    private final Migration migration;
    private final ManagedVm managed;
    private final Vm vm;
    private final MigrationPolicy policy;
    private final boolean vcpusWereRunning;
    private final Executor workers;
    private final FerryMetrics metrics;
    private final FlowHooks hooks;
    private final Timeouts timeouts;
    private final String sourceListener;
    private final RateLimiter limiter;
    private final PeerReplies replies = new PeerReplies("destination");
    private final SourceSession session;
    private final FlowSteps steps = new FlowSteps();
    private final CommitPoint commitPoint = new CommitPoint();
    private final Convergence convergence;
    private final SwitchoverCosts switchoverCosts;
    /**
     * The estimate that let pre-copy stop, and the stop-and-copy's bytes as that estimate counts them (pages
     * uncompressed, as the bandwidth is measured): what the switchover is judged by.
     */
    private Convergence.Estimate stoppedAt;
    private long stopCopyPlainBytes;
    /** The last estimate's fixed cost came from past switchovers, not from its own barriers and round trips. */
    private boolean pastSwitchoverCharged;
    private List<Device> devices;
    private Pass pass;
    private DeviceStreams streams;
    private long barrierNanos;
    private long downtimeStart;
    /** Each device's time in the grace and stop-and-copy barriers (F6: its quiesce time). */
    private long[] quiesceNanos;
    /** What each device predicted for its stop-and-copy as it began (W9, F6). */
    private long[] predictedStopCopy;
    /** The destination's load rate per device, nanoseconds per byte, from its iteration barriers (F9). */
    private double[] loadNanosPerByte;
    /** With verify: the frozen-point digest, kept up to date after every pass. */
    private Verification verification;
    /** Downtime's steps as they pass (F6): the times they end. */
    private final DowntimeSteps downtimeSteps = new DowntimeSteps();
    private int iteration;
    /** When the dirty logs were last read and cleared: the dirty rate is measured from there. */
    private volatile long logClearedNanos;
    /** The pass under way, for the live estimate of what is left: its pages, and the pages written before it. */
    private volatile long passPages;
    private volatile long passBackedPages;
    private volatile long pagesBeforePass;
    /** The quickest pass that carried nothing: a control round trip, with the destination's check of it (F3). */
    private long emptyPassNanos = Long.MAX_VALUE;

    SaveFlow(Migration migration, ManagedVm managed, MigrationPolicy policy, SessionId sessionId, boolean vcpusWereRunning,
             ProtocolClient client, Executor workers, FerryMetrics metrics, FlowHooks hooks, Timeouts timeouts,
             String sourceListener, SwitchoverCosts switchoverCosts) {
        this.migration = migration;
        this.managed = managed;
        this.vm = managed.vm();
        this.policy = policy;
        this.vcpusWereRunning = vcpusWereRunning;
        this.workers = workers;
        this.metrics = metrics;
        this.hooks = hooks;
        this.timeouts = timeouts;
        this.sourceListener = sourceListener;
        this.switchoverCosts = switchoverCosts;
        this.limiter = new RateLimiter(policy.maxBandwidthBytesPerSecond());
        this.session = new SourceSession(SourceSession.Connector.of(client, policy.destination(), sessionId),
                policy.destination().toString(), new Meter(), replies);
        this.convergence = new Convergence(policy);
        if (migration.capture() != null) {
            session.onOpen(migration.capture()::tap);
        }
    }

    /** Runs the whole migration on the calling thread. */
    void run() {
        devices = vm.devices();
        devices.forEach(d -> d.addListener(migration.trace()));
        migration.setDevices(vm::devices);
        migration.setMemoryTotal(vm.memory().sizeBytes());
        // Before the first pass, what is left is all of memory: zero pages at the cost of their entry.
        GuestMemory memory = vm.memory();
        passPages = memory.pages();
        passBackedPages = memory.store().backedPagesIn(0, memory.pages());
        migration.setRemaining(this::remainingBytes);
        try {
            steps.run(() -> {
                if (!setup()) {
                    // A dry run: the handshake and the destination's compatibility check passed (F8).
                    session.close();
                    managed.endMigration(vcpusWereRunning ? VmState.RUNNING : VmState.PAUSED);
                    migration.enter(SourcePhase.COMPLETED);
                    LOG.info("dry run {} of VM {}: {} can host it", migration.id(), vm.id(), policy.destination());
                    return;
                }
                preCopy();
                grace();
                stopAndCopy();
                switchover();
                migration.enter(SourcePhase.COMPLETED);
                LOG.info("migration {} of VM {} completed: downtime {} ms, {} iterations, {} bytes", migration.id(), vm.id(),
                        migration.downtimeMs(), migration.iterations(), migration.wireBytes());
            }, this::fail, LOG, "migration " + migration.id());
        } finally {
            devices.forEach(d -> d.removeListener(migration.trace()));
            if (verification != null) {
                verification.close();
            }
            replies.close();
            if (migration.capture() != null) {
                migration.capture().finish(migration.outcome());
            }
        }
    }

    // ---- the steps -----------------------------------------------------------------------------

    /** Returns whether the migration goes on: a dry run ends here. */
    private boolean setup() throws MigrationFailure, InterruptedException {
        step(SourcePhase.SETUP);
        session.openControl();
        VmManifest manifest = VmManifest.of(vm, vcpusWereRunning, migration.id(), policy, sourceListener);
        session.send(new Frame.VmDescription(vm.memory().sizeBytes(), PageGeometry.PAGE_SIZE, policy.channels(), manifest.toJson()));
        Frame answer = replies.next(Long.MAX_VALUE);
        if (answer instanceof Frame.VmRefused refused) {
            // F8: nothing was allocated on either side; the VM here is untouched.
            throw new MigrationFailure(MigrationFailure.INCOMPATIBLE_DEVICE, "the destination cannot host device " + refused.device()
                    + " (" + refused.field() + "): " + refused.reason(),
                    Map.of("device", refused.device(), "field", refused.field(), "reason", refused.reason()));
        }
        if (!(answer instanceof Frame.VmAccepted)) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "expected VM_ACCEPTED, the destination sent " + answer.type());
        }
        if (policy.dryRun()) {
            return false;
        }
        session.openData(policy.channels());
        PageSender sender = new PageSender(session.data(), workers, limiter, policy.compression());
        streams = new DeviceStreams(devices, session.control(), session.data(), limiter);
        pass = new Pass(sender, pageSource(), streams, workers);
        loadNanosPerByte = new double[devices.size()];
        migration.setSetupTime(System.nanoTime() - migration.startNanos());
        return true;
    }

    /** S1, then S2 until converged (F3). */
    private void preCopy() throws MigrationFailure, InterruptedException {
        step(SourcePhase.PRECOPY);
        GuestMemory memory = vm.memory();
        // S1: devices RUNNING, DIRTY_TRACKING on, all of memory.
        memory.vcpuLog().start();
        vm.iommu().startDirtyTracking();
        if (policy.verify()) {
            verification = Verification.open(vm);
        }
        logClearedNanos = System.nanoTime();
        runPass(0, counted(PageSet.all(memory.pages()), memory.pages(), memory.store().backedPagesIn(0, memory.pages())),
                Pass.DeviceData.NONE);
        // S2: every device SAVING|RUNNING; iterate until stopping now fits the downtime limit.
        // Timed once, this step stands for the switchover's barriers in every estimate: without the time
        // the flow's thread waited for a core, which is the host's load of the moment.
        long waitedBefore = RunQueueWait.nanos();
        GraceBarrier.Timing s2 = GraceBarrier.apply(migration, devices, d -> DeviceState.PRE_COPY, "S2 pre-copy",
                MigrationFailure.DEVICE_TRANSITION_FAILED);
        barrierNanos = s2.typicalWithout(RunQueueWait.nanos() - waitedBefore);
        iteration = 0;
        int counted = 1;
        long ackWaitFrom = -1;
        while (true) {
            checkEnded();
            Convergence.Estimate estimate = estimate();
            long expected = convergence.expectedDowntimeMillis(estimate);
            migration.setExpectedDowntimeMs(expected);
            LOG.debug("migration {} after pass {}: {}, bandwidth {} B/s, expected downtime {} ms", migration.id(), iteration,
                    estimate, convergence.bandwidth(), expected);
            // Pre-copy exists to move the devices' bulk state while they run: until each device's initial
            // data has been sent once (W4, W8), stopping now would move it all in the downtime.
            boolean fits = convergence.fits(expected);
            if (fits && streams.initialDataAnnounced() && initialDeviceBytes() == 0) {
                // F7: and the destination has loaded it (the switchover acknowledgement).
                if (replies.acknowledged() >= streams.announced()) {
                    migration.setSwitchoverAckWait(ackWaitFrom < 0 ? 0 : System.nanoTime() - ackWaitFrom);
                    stoppedAt = estimate;
                    break;
                }
                if (ackWaitFrom < 0) {
                    ackWaitFrom = System.nanoTime();
                }
                if (replies.awaitAcknowledged(streams.announced(), ACK_POLL_MILLIS)) {
                    continue;
                }
            } else {
                // maxIterations counts every pass over memory that did not converge, the first included;
                // passes made while only waiting for the acknowledgement do not count.
                if (counted >= policy.maxIterations()) {
                    long initial = initialDeviceBytes();
                    throw new MigrationFailure(MigrationFailure.TIMEOUT, "did not converge in " + counted
                            + (counted == 1 ? " pass" : " passes") + " (maxIterations " + policy.maxIterations()
                            + "): expected downtime " + expected + " ms, limit " + convergence.downtimeLimitMs() + " ms"
                            + (initial > 0 ? ", " + initial + " bytes of the devices' initial pre-copy data not sent yet" : "")
                            + fixedCostReason(estimate));
                }
                counted++;
                ackWaitFrom = -1;
                if (iteration > 0 && !fits) {
                    slowDown(estimate);
                }
            }
            iteration++;
            // The dirty logs are read once the devices' ready data is out (Pass): what the guest dirtied
            // meanwhile goes in this pass.
            runPass(iteration, () -> {
                DirtyBitmap.Snapshot dirty = readDirtyLogs();
                return counted(dirty::next, dirty.count(), dirty.count()).take();
            }, Pass.DeviceData.READY);
        }
    }

    /** F3, F9: slows what keeps the estimate above the limit, as {@link Convergence#slowdown} decides. */
    private void slowDown(Convergence.Estimate estimate) {
        Convergence.Slowdown slowdown = convergence.slowdown(estimate);
        if (slowdown.vcpus() > 0) {
            vm.workload().setThrottle(slowdown.vcpus());
            migration.setThrottle(slowdown.vcpus());
        }
        if (slowdown.devices() > 0) {
            vm.setDeviceWorkThrottle(slowdown.devices());
            migration.setDeviceThrottle(slowdown.devices());
        }
    }

    /**
     * F9: what stopping now would cost: the dirty pages and every device's predicted stop-and-copy
     * bytes (W9) at the measured bandwidth, each device's load time on the destination at the rate it
     * loaded so far, and the switchover's fixed cost: its barriers and two round trips, or what the last
     * switchovers to this destination cost beyond their data when that is more (and fits the limit alone).
     */
    private Convergence.Estimate estimate() {
        long deviceBytes = 0;
        long loadNanos = 0;
        for (int i = 0; i < devices.size(); i++) {
            long bytes = devices.get(i).stopCopyBytes();
            deviceBytes += bytes;
            loadNanos += (long) (bytes * loadNanosPerByte[i]);
        }
        long parts = Convergence.fixedCostNanos(barrierNanos, Convergence.roundTripNanos(session.control().rttNanos(), emptyPassNanos));
        long fixed = convergence.switchoverCostNanos(parts, switchoverCosts.quietest(policy.destination().toString()));
        pastSwitchoverCharged = fixed > parts;
        long dirtyPages = dirtyPagesNow();
        long verifyNanos = verification == null ? 0 : verification.predictNanos(dirtyPages, deviceBytes);
        return new Convergence.Estimate(dirtyPages * PAGE_WIRE_BYTES, deviceBytes, loadNanos, verifyNanos, fixed);
    }

    /**
     * Why a migration that did not converge could not, when the fixed cost is part of why: the barriers and
     * round trips alone exceed the limit (no pass shrinks them), or past switchovers to this destination set
     * it (and are forgotten, see {@link #fail}).
     */
    private String fixedCostReason(Convergence.Estimate estimate) {
        long millis = TimeUnit.NANOSECONDS.toMillis(estimate.fixedNanos());
        if (convergence.fixedCostAloneExceedsLimit(estimate)) {
            return ", of it " + millis + " ms the switchover's fixed cost (the device barriers and two control round trips), which"
                    + " more passes cannot shrink";
        }
        if (pastSwitchoverCharged) {
            return ", of it " + millis + " ms the switchover's fixed cost as the last switchovers to this destination paid it"
                    + " beyond their data (forgotten now: the next migration there goes by the barriers and round trips it"
                    + " measures)";
        }
        return "";
    }

    /** S3, every device in its grace state (F1); then S4, the vCPUs stop and downtime begins (F6). */
    private void grace() throws MigrationFailure, InterruptedException {
        step(SourcePhase.VIOMMU_GRACE);
        quiesceNanos = GraceBarrier.apply(migration, devices, d -> GraceStates.saveGrace(d.config().ndma()), "S3 vIOMMU grace",
                MigrationFailure.DEVICE_TRANSITION_FAILED).eachNanos();
        step(SourcePhase.P2P_GRACE);
        downtimeStart = System.nanoTime();
        vm.stopVcpus();
        downtimeSteps.ended("vcpus_stop");
    }

    /** S5: every device stops; the last dirty pages and the rest of every device's data; PREPARE. */
    private void stopAndCopy() throws MigrationFailure, InterruptedException {
        step(SourcePhase.STOP_COPY);
        predictedStopCopy = new long[devices.size()];
        for (int i = 0; i < devices.size(); i++) {
            predictedStopCopy[i] = devices.get(i).stopCopyBytes();
        }
        long[] stopping = GraceBarrier.apply(migration, devices, d -> DeviceState.STOP_COPY, "S5 stop-and-copy",
                MigrationFailure.DEVICE_TRANSITION_FAILED).eachNanos();
        for (int i = 0; i < devices.size(); i++) {
            quiesceNanos[i] += stopping[i];
        }
        downtimeSteps.ended("devices_stop");
        GuestMemory memory = vm.memory();
        DirtyBitmap.Snapshot last = readDirtyLogs();
        memory.vcpuLog().stop();
        vm.iommu().stopDirtyTracking();
        // The pass ends the data channels too (CHANNEL_END after its DATA_END).
        runPass(iteration + 1, counted(last::next, last.count(), last.count()), Pass.DeviceData.TO_END);
        session.dataComplete();
        downtimeSteps.ended("final_transfer");
        session.send(new Frame.Prepare(policy.verify()));
        // With verify, both sides digest at once: this one its frozen VM while the destination loads its copy.
        byte[] digest = verification == null ? new byte[0] : verification.frozen(migration);
        Frame.Prepared prepared = replies.await(Frame.Prepared.class, f -> f instanceof Frame.IterationDone, Long.MAX_VALUE,
                "the destination did not load the VM");
        downtimeSteps.ended("prepare");
        LOG.debug("migration {}: destination loaded in {} us", migration.id(), prepared.loadMicros());
        for (int i = 0; i < devices.size(); i++) {
            Device device = devices.get(i);
            migration.deviceDowntime(device.id(), device.kind().label(), new MigrationView.DeviceDowntime(streams.stopCopyBytes(i),
                    predictedStopCopy[i], millis(quiesceNanos[i]), millis(streams.saveNanos(i)),
                    i < prepared.deviceLoadMicros().size() ? prepared.deviceLoadMicros().get(i) / 1000.0 : null, null));
            migration.trace().span(device.id(), "stop-and-copy data", streams.stopCopyStart(i), streams.stopCopyEnd(i),
                    Map.of("stopCopyBytes", streams.stopCopyBytes(i), "predictedStopCopyBytes", predictedStopCopy[i],
                            "saveMs", millis(streams.saveNanos(i))));
        }
        if (policy.verify()) {
            boolean equal = Arrays.equals(digest, prepared.digest());
            migration.setVerified(equal);
            if (!equal) {
                throw new MigrationFailure(MigrationFailure.VERIFY_FAILED, "the destination's digest of the frozen VM "
                        + HexFormat.of().formatHex(prepared.digest()) + " differs from the source's " + HexFormat.of().formatHex(digest));
            }
        }
    }

    private static double millis(long nanos) {
        return nanos / 1e6;
    }

    /** S6: the commit, then the destination's confirmation. */
    private void switchover() throws MigrationFailure, InterruptedException {
        step(SourcePhase.SWITCHOVER);
        commitPoint.beginCommit();
        ChannelFuture commit = session.send(new Frame.Commit());
        // Only a COMMIT written whole to the socket can have reached the destination: one that failed,
        // or did not leave in time (the channel is closed below, dropping it), is still before the
        // commit (F4). Once written, only CONFIRM can tell (F5).
        if (!commit.awaitUninterruptibly(COMMIT_WRITE_MILLIS) || !commit.isSuccess()) {
            session.abort(dev.ferry.protocol.ErrorCode.CONNECTION_LOST, "COMMIT could not be written");
            commitPoint.withdrawn();
            throw new MigrationFailure(MigrationFailure.CONNECTION_LOST, "COMMIT could not be written to the destination ("
                    + (commit.isDone() ? commit.cause() : "not written within " + COMMIT_WRITE_MILLIS + " ms") + ")");
        }
        commitPoint.committed();
        Frame.Confirm confirm;
        try {
            confirm = replies.await(Frame.Confirm.class, f -> false, System.nanoTime() + timeouts.switchover().toNanos(),
                    "no confirmation within " + timeouts.switchover().toMillis() + " ms");
        } catch (MigrationFailure f) {
            throw new MigrationFailure(MigrationFailure.SWITCHOVER_UNKNOWN, "committed, but the destination did not confirm ("
                    + f.getMessage() + "); the VM is held here, stopped, for an operator (F5)");
        }
        downtimeSteps.ended("switchover");
        long downtime = System.nanoTime() - downtimeStart;
        migration.setDowntime(downtime, downtimeSteps.steps(downtimeStart), convergence.downtimeLimitMs());
        downtimeSteps.trace(migration.trace(), downtimeStart);
        for (int i = 0; i < devices.size() && i < confirm.deviceResumeMicros().size(); i++) {
            migration.deviceResumed(devices.get(i).id(), confirm.deviceResumeMicros().get(i) / 1000.0);
        }
        metrics.downtime(downtime);
        long beyondData = convergence.beyondData(downtime, stopCopyPlainBytes, stoppedAt.deviceLoadNanos(), stoppedAt.verifyNanos());
        if (beyondData >= 0) {
            switchoverCosts.record(policy.destination().toString(), beyondData);
        }
        downtimeSteps.steps(downtimeStart).forEach(step -> metrics.downtimeStep(step.step(), step.durationMs()));
        for (Migration.KindDowntime device : migration.deviceDowntimes()) {
            MigrationView.DeviceDowntime d = device.downtime();
            metrics.deviceDowntime(device.kind(), "quiesce", d.quiesceMs());
            metrics.deviceDowntime(device.kind(), "save", d.saveMs());
            metrics.deviceDowntime(device.kind(), "load", d.loadMs());
            metrics.deviceDowntime(device.kind(), "resume", d.resumeMs());
        }
        if (downtime > TimeUnit.MILLISECONDS.toNanos(convergence.downtimeLimitMs())) {
            LOG.warn("migration {} of VM {}: downtime {} ms exceeded the limit of {} ms (expected {} ms)", migration.id(), vm.id(),
                    TimeUnit.NANOSECONDS.toMillis(downtime), convergence.downtimeLimitMs(), migration.view().expectedDowntimeMs());
        }
        session.close();
        managed.endMigration(VmState.MIGRATED);
    }

    // ---- passes --------------------------------------------------------------------------------

    /**
     * One pass and its iteration barrier: the destination has applied all of it. Measured to there, the
     * bandwidth is the rate at which the destination takes data, and no backlog there is left for the
     * downtime. The stop-and-copy pass has no barrier: PREPARED follows it.
     */
    private void runPass(int number, Pass.Pages pages, Pass.DeviceData deviceData) throws MigrationFailure, InterruptedException {
        long start = System.nanoTime();
        pagesBeforePass = migration.normalPages() + migration.zeroPagesSent();
        Pass.Result result;
        try {
            result = pass.run(number, pages, deviceData);
        } catch (ProtocolException e) {
            throw replies.explainSendFailure(e, "sending memory");
        }
        session.send(new Frame.IterationEnd(number, result.pages(), result.pageWireBytes()));
        long handedOver = System.nanoTime() - start;
        if (deviceData == Pass.DeviceData.TO_END) {
            passPages = 0;
            stopCopyPlainBytes = result.plainPageWireBytes() + result.deviceBytes();
            return;
        }
        // With verify, this side hashes what the pass changed while the destination applies and hashes it.
        long verifyNanos = verification == null ? 0 : verification.refresh();
        Frame.IterationDone done = replies.await(Frame.IterationDone.class, f -> false, Long.MAX_VALUE,
                "the destination did not apply iteration " + number);
        if (done.iteration() != number) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "the destination acknowledged iteration " + done.iteration()
                    + " instead of " + number);
        }
        List<Frame.IterationDone.DeviceLoad> loads = done.devices();
        for (int i = 0; i < loads.size() && i < loadNanosPerByte.length; i++) {
            Frame.IterationDone.DeviceLoad load = loads.get(i);
            if (load.loadedBytes() > 0) {
                loadNanosPerByte[i] = load.loadMicros() * 1000.0 / load.loadedBytes();
            }
        }
        long elapsed = System.nanoTime() - start;
        if (result.pages() == 0 && result.deviceBytes() == 0) {
            emptyPassNanos = Math.min(emptyPassNanos, elapsed);
        }
        long bytes = result.pageWireBytes() + result.deviceBytes();
        // The two sides' digest refreshes ran side by side after the data was out: not the link's time.
        long hashing = Math.max(verifyNanos, TimeUnit.MICROSECONDS.toNanos(done.verifyMicros()));
        // Bandwidth in the units the remaining pages are counted in (uncompressed): with compression, memory
        // drains faster than the bytes on the wire, and the estimate must see that or it never converges.
        convergence.measured(result.plainPageWireBytes() + result.deviceBytes(), Math.max(handedOver, elapsed - hashing));
        migration.passEnded(new MigrationView.PassView(number, result.pages(), result.zeroPages(), bytes,
                TimeUnit.NANOSECONDS.toMillis(elapsed), dirtyRate(dirtyPagesNow(), System.nanoTime())));
        metrics.iteration();
        passPages = 0;
    }

    /** A pass's pages that, as the pass takes them, become the pass under way of the live view ({@link #remainingBytes}). */
    private Pass.Pages counted(PageSet pages, long count, long backed) {
        return () -> {
            passBackedPages = backed;
            passPages = count;
            return pages;
        };
    }

    /** Reads and clears both dirty logs (M1); the pages they held over the time since the last read are the dirty rate. */
    private DirtyBitmap.Snapshot readDirtyLogs() {
        GuestMemory memory = vm.memory();
        long now = System.nanoTime();
        DirtyBitmap.Snapshot dirty = memory.vcpuLog().readAndClear().union(memory.dmaLog().readAndClear());
        migration.setDirtyRate(dirtyRate(dirty.count(), now));
        logClearedNanos = now;
        return dirty;
    }

    private long dirtyRate(long pages, long now) {
        long elapsed = now - logClearedNanos;
        return elapsed <= 0 ? 0 : (long) (pages * (double) PageGeometry.PAGE_SIZE * 1e9 / elapsed);
    }

    /** Pages dirty now, not cleared. */
    private long dirtyPagesNow() {
        GuestMemory memory = vm.memory();
        return memory.vcpuLog().countUnion(memory.dmaLog());
    }

    private long initialDeviceBytes() {
        long total = 0;
        for (Device device : devices) {
            total += device.initialBytes();
        }
        return total;
    }

    private long stopCopyDeviceBytes() {
        long total = 0;
        for (Device device : devices) {
            total += device.stopCopyBytes();
        }
        return total;
    }

    /**
     * What is left to send, for the live view: the rest of the pass under way (pages not yet written,
     * in proportion, zero pages costing their entry only), the pages dirtied since the logs were last
     * read, and what the devices will still stream.
     */
    private long remainingBytes() {
        SourcePhase phase = (SourcePhase) migration.phase();
        if (phase.ordinal() > SourcePhase.STOP_COPY.ordinal()) {
            return 0;
        }
        long left = 0;
        long planned = passPages;
        if (planned > 0) {
            long written = migration.normalPages() + migration.zeroPagesSent() - pagesBeforePass;
            double share = Math.max(0, 1 - (double) written / planned);
            left += (long) (share * (passBackedPages * PAGE_WIRE_BYTES + (planned - passBackedPages) * ZERO_PAGE_WIRE_BYTES));
        }
        if (vm.memory().vcpuLog().isLogging()) {
            left += dirtyPagesNow() * PAGE_WIRE_BYTES;
        }
        return left + (devices == null ? 0 : stopCopyDeviceBytes());
    }

    /** Guest memory as the sender reads it: zero pages flagged, runs of pages as one view. */
    private PageSource pageSource() {
        GuestMemory memory = vm.memory();
        return new PageSource() {
            @Override
            public ByteBuffer page(long index) {
                ByteBuffer view = memory.pageView(index);
                return view == null || view.mismatch(ZERO_PAGE.duplicate()) == -1 ? null : view;
            }

            @Override
            public ByteBuffer run(long first, int count) {
                return memory.pagesView(first, count);
            }

            @Override
            public long zeroStretch(long first) {
                return memory.store().unbackedPagesFrom(first);
            }
        };
    }

    /**
     * Counts every frame of the session: as it is queued, for the rate limit (pages and device data are
     * counted by their senders before they are queued, the rest here), and as it is written, for progress.
     */
    private final class Meter implements TrafficMeter {
        /** The phase bytes are counted in: the source's last phase before the end, for frames written as it ends. */
        private volatile String phase = SourcePhase.SETUP.label();

        @Override
        public void queued(FrameType type, int bytes) {
            if (type != FrameType.PAGES && type != FrameType.COMPRESSED_PAGES && type != FrameType.ZERO_PAGES
                    && type != FrameType.DEVICE_DATA) {
                limiter.debit(bytes);
            }
        }

        @Override
        public void written(Sent sent) {
            migration.wire(sent.bytes());
            String kind = switch (sent.type()) {
                case PAGES, COMPRESSED_PAGES, ZERO_PAGES, DATA_END, CHANNEL_END -> "memory";
                case DEVICE_DATA, DEVICE_END -> "device";
                default -> "control";
            };
            if (sent.type() == FrameType.PAGES || sent.type() == FrameType.COMPRESSED_PAGES || sent.type() == FrameType.ZERO_PAGES) {
                migration.pages(sent.pages(), sent.zeroPages());
            } else if (sent.type() == FrameType.DEVICE_DATA && sent.device() >= 0 && sent.device() < devices.size()) {
                migration.deviceData(devices.get(sent.device()).id(), sent.bytes() - Frame.DeviceData.WIRE_OVERHEAD);
            }
            Phase now = migration.phase();
            if (!now.terminal()) {
                phase = now.label();
            }
            metrics.sent(phase, kind, sent.bytes());
        }
    }

    // ---- stop, failure, rollback ---------------------------------------------------------------

    @Override
    public void update(Migration.Parameters parameters) {
        if (migration.finished() || ((SourcePhase) migration.phase()).ordinal() > SourcePhase.PRECOPY.ordinal()) {
            throw dev.ferry.orchestrator.Refusal.conflict("too_late", "migration " + migration.id() + " is past pre-copy ("
                    + migration.phase().label() + "): its settings no longer change anything");
        }
        if (parameters.maxBandwidthBytesPerSecond() != null) {
            long rate = parameters.maxBandwidthBytesPerSecond();
            limiter.setRate(rate);
            convergence.setRateLimit(rate);
            migration.policyChanged("maxBandwidthBytesPerSecond", rate);
        }
        if (parameters.downtimeLimitMs() != null) {
            long limit = parameters.downtimeLimitMs();
            convergence.setDowntimeLimitMs(limit);
            migration.policyChanged("downtimeLimitMs", limit);
        }
        LOG.info("migration {}: settings changed: {}", migration.id(), parameters);
    }

    @Override
    public boolean cancel(String reason) {
        try {
            if (!commitPoint.cancel(reason, CANCEL_DURING_COMMIT_MILLIS)) {
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
        if (reason.code().equals(MigrationFailure.TIMEOUT) && stoppedAt == null && pastSwitchoverCharged) {
            // F3: pre-copy did not converge (in maxIterations or timeoutMs) while past switchovers set its fixed cost. It
            // records no figure of its own, so a destination judged by a slow past (the first switchovers of a
            // fresh JVM) would otherwise stay shut: the next migration there goes by the parts it measures.
            switchoverCosts.forget(policy.destination().toString());
        }
        if (!migration.dryRun()) {
            metrics.migrationFailed(Role.SOURCE.label(), reason.code());
        }
        if (state.committed()) {
            // F5: two running copies are never possible. The channels close without a word (the
            // destination may be running the VM), and the VM is held, stopped, for an operator.
            session.abort(dev.ferry.protocol.ErrorCode.SOURCE_FAILED, reason.getMessage());
            holdForOperator();
            LOG.error("migration {} of VM {}: {}", migration.id(), vm.id(), reason.getMessage());
            migration.enter(SourcePhase.FAILED);
            return;
        }
        // F4: the channels closed (nothing reads the VM's memory through them any more; the pass's
        // workers have ended already), then the VM restored.
        session.abort(reason.wireCode(), reason.getMessage());
        migration.recovered(Rollback.run(vm, devices, vcpusWereRunning));
        migration.setThrottle(0);
        migration.setDeviceThrottle(0);
        managed.endMigration(vcpusWereRunning ? VmState.RUNNING : VmState.PAUSED);
        LOG.warn("migration {} of VM {} rolled back: {}: {}", migration.id(), vm.id(), reason.code(), reason.getMessage());
        boolean stoppedByOperator = reason.code().equals(MigrationFailure.CANCELLED) || reason.code().equals(MigrationFailure.SHUTDOWN);
        migration.enter(stoppedByOperator ? SourcePhase.CANCELLED : SourcePhase.FAILED);
    }

    /**
     * F5's defined state: every device's save session ended (SAVING cleared, the device stays stopped,
     * D9), the throttle lifted, dirty tracking off, the vCPUs stopped, and the VM held: paused, refusing
     * a new migration until an operator resumes it (after checking the destination) or deletes it.
     */
    private void holdForOperator() {
        vm.memory().vcpuLog().stop();
        vm.iommu().stopDirtyTracking();
        vm.workload().setThrottle(0);
        vm.setDeviceWorkThrottle(0);
        migration.setThrottle(0);
        migration.setDeviceThrottle(0);
        for (Device device : devices) {
            DeviceState state = device.state();
            if (state.saving() && !state.isError()) {
                device.setState(DeviceState.STOP);
            }
        }
        managed.hold(migration.id(), MigrationFailure.SWITCHOVER_UNKNOWN);
    }

    private MigrationFailure stopped(String reason) {
        return switch (reason) {
            case MigrationFailure.SHUTDOWN -> new MigrationFailure(MigrationFailure.SHUTDOWN, "ferryd is shutting down");
            case MigrationFailure.TIMEOUT -> new MigrationFailure(MigrationFailure.TIMEOUT, "timeoutMs " + policy.timeoutMs()
                    + " passed in " + migration.phase().label());
            default -> new MigrationFailure(MigrationFailure.CANCELLED, "cancelled by the operator");
        };
    }

    // ---- helpers -------------------------------------------------------------------------------

    private void step(SourcePhase phase) throws MigrationFailure, InterruptedException {
        checkEnded();
        migration.enter(phase);
        hooks.entered(migration, phase);
        checkEnded();
        if (phase != SourcePhase.SETUP) {
            session.send(new Frame.Phase(phase.wireCode().code(), iteration));
        }
    }

    /** Fails at once if stopped, or if the destination aborted or a channel broke. */
    private void checkEnded() throws MigrationFailure {
        if (commitPoint.closed()) {
            throw new MigrationFailure(MigrationFailure.CANCELLED, "stopped");
        }
        MigrationFailure ended = replies.ended();
        if (ended != null) {
            throw ended;
        }
    }
}
