package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.device.memory.DirtyBitmap;
import dev.ferry.device.memory.GuestMemory;
import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.GraceStates;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.vm.Vm;
import dev.ferry.orchestrator.metrics.FerryMetrics;
import dev.ferry.orchestrator.vm.ManagedVm;
import dev.ferry.orchestrator.vm.VmState;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PhaseCode;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.FrameHandler;
import dev.ferry.protocol.net.ProtocolClient;
import dev.ferry.protocol.transfer.PageSender;
import dev.ferry.protocol.transfer.PageSet;
import dev.ferry.protocol.transfer.PageSource;
import dev.ferry.protocol.transfer.RateLimiter;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFuture;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The source's flow (SPEC §5, S1–S6) as an explicit sequence of steps over every device of the VM:
 * setup, full pass (S1), pre-copy iterations (S2), vIOMMU grace (S3), P2P grace (S4), stop-and-copy
 * (S5), switchover (S6). Until COMMIT is sent every failure or cancel rolls back (F4); after it the
 * source never restarts the VM by itself (F5).
 */
final class SourceFlow implements Migration.Control {
    private static final Logger LOG = LoggerFactory.getLogger(SourceFlow.class);
    private static final Duration ANSWER_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration CONFIRM_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration STALL_TIMEOUT = Duration.ofSeconds(30);
    /** How long a broken data channel waits for the destination's reason on the control channel. */
    private static final Duration REASON_WAIT = Duration.ofSeconds(2);
    private static final int DEVICE_CHUNK = Frame.DeviceData.MAX_CHUNK_BYTES;
    /** A page on the wire: its entry and its bytes. */
    private static final long PAGE_WIRE_BYTES = 8 + PageGeometry.PAGE_SIZE;
    private static final ByteBuffer ZERO_PAGE = ByteBuffer.allocateDirect(PageGeometry.PAGE_SIZE).asReadOnlyBuffer();


    private final Migration migration;
    private final ManagedVm managed;
    private final Vm vm;
    private final MigrationPolicy policy;
    private final SessionId session;
    private final boolean vcpusWereRunning;
    private final ProtocolClient client;
    private final ExecutorService senders;
    private final FerryMetrics metrics;
    private final FaultInjector faults;
    private final Convergence convergence;
    private final Inbox inbox = new Inbox();
    private final CommitPoint commitPoint = new CommitPoint();
    private final List<FrameChannel> data = new ArrayList<>();
    private volatile FrameChannel control;
    private PageSender sender;
    private List<Device> devices;
    private long[] offsets;
    private long barrierNanos;
    private long downtimeStart;
    private int iteration;

    SourceFlow(Migration migration, ManagedVm managed, MigrationPolicy policy, SessionId session, boolean vcpusWereRunning,
               ProtocolClient client, ExecutorService senders, FerryMetrics metrics, FaultInjector faults) {
        this.migration = migration;
        this.managed = managed;
        this.vm = managed.vm();
        this.policy = policy;
        this.session = session;
        this.vcpusWereRunning = vcpusWereRunning;
        this.client = client;
        this.senders = senders;
        this.metrics = metrics;
        this.faults = faults;
        this.convergence = new Convergence(policy);
    }

    /** Runs the whole migration on the calling thread. */
    void run() {
        devices = vm.devices();
        offsets = new long[devices.size()];
        devices.forEach(d -> d.addListener(migration.trace()));
        migration.setDevices(vm::devices);
        migration.setMemoryTotal(vm.memory().sizeBytes());
        try {
            MigrationFailure.runSteps(() -> {
                setup();
                preCopy();
                grace();
                stopAndCopy();
                switchover();
                migration.enter(Phase.COMPLETED);
                LOG.info("migration {} of VM {} completed: downtime {} ms, {} iterations, {} bytes", migration.id(), vm.id(),
                        migration.downtimeMs(), migration.iterations.get(), migration.wireBytes.get());
            }, this::fail, LOG, "migration " + migration.id());
        } finally {
            devices.forEach(d -> d.removeListener(migration.trace()));
        }
    }

    // ---- the steps -----------------------------------------------------------------------------

    private void setup() throws MigrationFailure, InterruptedException {
        step(Phase.SETUP);
        control = connect(dev.ferry.protocol.ChannelRole.CONTROL, 0, new FrameHandler() {
            @Override
            public void frameReceived(FrameChannel channel, Frame frame) {
                // Only small frames come back on the control channel (its rules admit no buffers).
                inbox.add(frame);
            }

            @Override
            public void channelClosed(FrameChannel channel, ProtocolException cause) {
                inbox.add(new Inbox.Closed(cause, true));
            }
        });
        VmDescription description = VmDescription.of(vm, vcpusWereRunning, migration.id());
        control.send(new Frame.VmDescription(vm.memory().sizeBytes(), PageGeometry.PAGE_SIZE, policy.channels(), description.toJson()));
        await(Frame.VmAccepted.class, ANSWER_TIMEOUT, "the destination did not accept the VM");
        for (int c = 0; c < policy.channels(); c++) {
            data.add(connect(dev.ferry.protocol.ChannelRole.DATA, c, new FrameHandler() {
                @Override
                public void frameReceived(FrameChannel channel, Frame frame) {
                    if (frame instanceof Frame.Abort) {
                        inbox.add(frame);
                    } else {
                        io.netty.util.ReferenceCountUtil.release(frame);
                    }
                }

                @Override
                public void channelClosed(FrameChannel channel, ProtocolException cause) {
                    if (cause != null) {
                        inbox.add(new Inbox.Closed(cause, false));
                    }
                }
            }));
        }
        sender = new PageSender(data, senders, new RateLimiter(policy.maxBandwidthBytesPerSecond()), STALL_TIMEOUT);
        migration.setSetupTime(System.nanoTime() - migration.startNanos());
    }

    /** S1, then S2 until converged (F3). */
    private void preCopy() throws MigrationFailure, InterruptedException {
        step(Phase.PRECOPY);
        GuestMemory memory = vm.memory();
        // S1: devices RUNNING, DIRTY_TRACKING on, all of memory.
        memory.vcpuLog().start();
        vm.iommu().startDirtyTracking();
        pass(0, PageSet.all(memory.pages()), Phase.PRECOPY, false);
        // S2: every device SAVING|RUNNING; iterate.
        barrierNanos = GraceBarrier.apply(devices, d -> DeviceState.PRE_COPY, "S2 pre-copy", MigrationFailure.DEVICE_TRANSITION_FAILED)
                .typicalNanos();
        iteration = 1;
        while (true) {
            checkAbandoned();
            pass(iteration, dirtyPages(), Phase.PRECOPY, false);
            long remaining = memory.vcpuLog().countUnion(memory.dmaLog()) * PAGE_WIRE_BYTES + stopCopyDeviceBytes();
            long fixed = Convergence.fixedCostNanos(barrierNanos, Math.max(0, control.rttNanos()));
            long expected = convergence.expectedDowntimeMillis(remaining, fixed);
            migration.setRemainingBytes(remaining);
            migration.setExpectedDowntimeMs(expected);
            LOG.debug("migration {} iteration {}: {} bytes left, bandwidth {} B/s, fixed cost {} us, expected downtime {} ms",
                    migration.id(), iteration, remaining, convergence.bandwidth(), fixed / 1000, expected);
            if (convergence.fits(expected)) {
                break;
            }
            if (iteration + 1 >= policy.maxIterations()) {
                throw new MigrationFailure(MigrationFailure.TIMEOUT, "did not converge in " + (iteration + 1)
                        + " iterations: expected downtime " + expected + " ms, limit " + policy.downtimeLimitMs() + " ms");
            }
            int throttle = convergence.nextThrottle();
            if (throttle > 0) {
                vm.workload().setThrottle(throttle);
            }
            iteration++;
        }
    }

    /** S3, every device in its grace state (F1); then S4, the vCPUs stop and downtime begins (F6). */
    private void grace() throws MigrationFailure, InterruptedException {
        step(Phase.VIOMMU_GRACE);
        GraceBarrier.apply(devices, d -> GraceStates.saveGrace(d.config().ndma()), "S3 vIOMMU grace",
                MigrationFailure.DEVICE_TRANSITION_FAILED);
        step(Phase.P2P_GRACE);
        downtimeStart = System.nanoTime();
        vm.stopVcpus();
    }

    /** S5: every device stops; the last dirty pages and the rest of every device's data; PREPARE. */
    private void stopAndCopy() throws MigrationFailure, InterruptedException {
        step(Phase.STOP_COPY);
        long t0 = System.nanoTime();
        GraceBarrier.apply(devices, d -> DeviceState.STOP_COPY, "S5 stop-and-copy", MigrationFailure.DEVICE_TRANSITION_FAILED);
        GuestMemory memory = vm.memory();
        PageSet last = dirtyPages();
        memory.vcpuLog().stop();
        vm.iommu().stopDirtyTracking();
        long t1 = System.nanoTime();
        long pagesBefore = migration.memoryTransferred.get() / PageGeometry.PAGE_SIZE;
        long deviceBytes = pass(iteration + 1, last, Phase.STOP_COPY, true);
        long t3 = System.nanoTime();
        try {
            sender.finish();
        } catch (ProtocolException e) {
            throw failure(e, "ending the data channels");
        }
        long t4 = System.nanoTime();
        migration.setRemainingBytes(0);
        control.send(new Frame.Prepare(policy.verify()));
        // With verify, both sides digest at once: this one its frozen VM while the destination loads its copy.
        byte[] digest = new byte[0];
        if (policy.verify()) {
            long digestStart = System.nanoTime();
            digest = HexFormat.of().parseHex(vm.digest().vm());
            migration.setVerifyTime(System.nanoTime() - digestStart);
        }
        Frame.Prepared prepared = await(Frame.Prepared.class, ANSWER_TIMEOUT, "the destination did not load the VM");
        long t5 = System.nanoTime();
        LOG.debug("migration {} stop-and-copy: devices stopped in {} us, {} pages and {} device bytes in {} us,"
                        + " channels ended in {} us, PREPARED after {} us (destination loaded in {} us)", migration.id(),
                (t1 - t0) / 1000, migration.memoryTransferred.get() / PageGeometry.PAGE_SIZE - pagesBefore, deviceBytes, (t3 - t1) / 1000,
                (t4 - t3) / 1000, (t5 - t4) / 1000, prepared.loadMicros());
        if (policy.verify()) {
            boolean equal = Arrays.equals(digest, prepared.digest());
            migration.setVerified(equal);
            if (!equal) {
                throw new MigrationFailure(MigrationFailure.VERIFY_FAILED, "the destination's digest of the frozen VM "
                        + HexFormat.of().formatHex(prepared.digest()) + " differs from the source's " + HexFormat.of().formatHex(digest));
            }
        }
    }

    /** S6: the commit, then the destination's confirmation. */
    private void switchover() throws MigrationFailure, InterruptedException {
        step(Phase.SWITCHOVER);
        commitPoint.commit("cancelled before the commit");
        ChannelFuture commit = control.send(new Frame.Commit());
        // A COMMIT whose write failed never reached the socket whole, so the destination cannot have
        // committed: that is still before the commit (F4). Once written, only CONFIRM can tell (F5).
        if (commit.await(CONFIRM_TIMEOUT.toMillis()) && !commit.isSuccess()) {
            commitPoint.withdraw();
            throw new MigrationFailure(MigrationFailure.CONNECTION_LOST, "the connection closed before COMMIT was sent ("
                    + commit.cause() + ")");
        }
        try {
            await(Frame.Confirm.class, CONFIRM_TIMEOUT, "no confirmation");
        } catch (MigrationFailure f) {
            throw new MigrationFailure(MigrationFailure.SWITCHOVER_UNKNOWN, "committed, but the destination did not confirm ("
                    + f.getMessage() + "); the VM stays paused here for an operator (F5)");
        }
        long downtime = System.nanoTime() - downtimeStart;
        migration.setDowntime(downtime);
        metrics.downtime(downtime);
        closeChannels();
        managed.endMigration(VmState.MIGRATED);
    }

    // ---- memory and device data ----------------------------------------------------------------

    /**
     * One pass over memory: its pages on the data channels and, in pre-copy iterations (S2), the
     * devices' pending data on the control channel at the same time, so that neither waits for the
     * other and the destination takes device data as it comes; in stop-and-copy (S5) the rest of every
     * device's data, to the end of its stream. Pages go without a copy when {@code stable}
     * (stop-and-copy) or when the vCPUs are stopped (a paused VM, whose devices are idle); a running
     * VM's pages are copied into their frames.
     *
     * @return the device bytes sent with it
     */
    private long pass(int number, PageSet pages, Phase phase, boolean stable) throws MigrationFailure, InterruptedException {
        long start = System.nanoTime();
        boolean stopCopy = phase == Phase.STOP_COPY;
        Future<Long> devicesDrained = stopCopy || number > 0
                ? senders.submit(() -> drainDevices(stopCopy, phase)) : CompletableFuture.completedFuture(0L);
        PageSender.Result result;
        try {
            result = sender.send(number, pages, pageSource(), stable || !vm.vcpusRunning());
        } catch (ProtocolException e) {
            devicesDrained.cancel(true);
            throw failure(e, "sending memory");
        } catch (InterruptedException | RuntimeException e) {
            devicesDrained.cancel(true);
            throw e;
        }
        migration.memorySent(result.pages(), result.zeroPages(), result.wireBytes());
        metrics.sent(phase.label(), "memory", result.wireBytes());
        long pagesSent = System.nanoTime();
        long deviceBytes = joinDrain(devicesDrained);
        control.send(new Frame.IterationEnd(number, result.pages(), result.wireBytes()));
        if (stopCopy) {
            LOG.debug("migration {} stop-and-copy pass: {} pages in {} us, devices done {} us later", migration.id(),
                    result.pages(), (pagesSent - start) / 1000, (System.nanoTime() - pagesSent) / 1000);
            return deviceBytes;
        }
        // The iteration barrier: the destination has applied all of it. Measured to here, the bandwidth
        // is the rate at which the destination takes data, and no backlog there is left for the downtime.
        Frame.IterationDone done = await(Frame.IterationDone.class, ANSWER_TIMEOUT, "the destination did not apply iteration " + number);
        if (done.iteration() != number) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "the destination acknowledged iteration " + done.iteration()
                    + " instead of " + number);
        }
        long elapsed = System.nanoTime() - start;
        convergence.measured(result.wireBytes() + deviceBytes, elapsed);
        migration.setThroughput(convergence.bandwidth());
        migration.iterations.incrementAndGet();
        metrics.iteration();
        if (number > 0 && elapsed > 0) {
            migration.setDirtyRate((long) (result.pages() * (double) PageGeometry.PAGE_SIZE * 1e9 / elapsed));
        }
        return deviceBytes;
    }

    private static long joinDrain(Future<Long> drained) throws MigrationFailure, InterruptedException {
        try {
            return drained.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof MigrationFailure failure) {
                throw failure;
            }
            if (e.getCause() instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw new MigrationFailure(MigrationFailure.INTERNAL, "sending device data: " + e.getCause());
        }
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
        };
    }

    /** Reads and clears both dirty logs (M1). */
    private PageSet dirtyPages() {
        GuestMemory memory = vm.memory();
        DirtyBitmap.Snapshot dirty = memory.vcpuLog().readAndClear().union(memory.dmaLog().readAndClear());
        return dirty::next;
    }

    private long stopCopyDeviceBytes() {
        long total = 0;
        for (Device device : devices) {
            total += device.estimatedStopCopyBytes();
        }
        return total;
    }

    /** Streams what each device has ready (W1); with {@code toEnd}, to the end of its stream and DEVICE_END. */
    private long drainDevices(boolean toEnd, Phase phase) throws MigrationFailure, InterruptedException {
        long total = 0;
        for (int index = 0; index < devices.size(); index++) {
            Device device = devices.get(index);
            while (true) {
                ByteBuf chunk = control.channel().alloc().directBuffer(DEVICE_CHUNK);
                int n;
                try {
                    n = device.readWindow(chunk.nioBuffer(0, DEVICE_CHUNK));
                } catch (RuntimeException e) {
                    chunk.release();
                    throw e;
                }
                if (n == 0) {
                    chunk.release();
                    break;
                }
                chunk.writerIndex(n);
                try {
                    control.sendWhenWritable(new Frame.DeviceData(index, offsets[index], chunk), STALL_TIMEOUT);
                } catch (ProtocolException e) {
                    throw failure(e, "sending the data of " + device.id());
                }
                offsets[index] += n;
                total += n;
                migration.deviceSent(device.id(), n);
                metrics.sent(phase.label(), "device", n);
            }
            if (toEnd) {
                if (!device.streamFinished()) {
                    throw new MigrationFailure(MigrationFailure.INTERNAL, device.id() + " did not end its stream in stop-and-copy");
                }
                control.send(new Frame.DeviceEnd(index, offsets[index]));
            }
        }
        return total;
    }

    // ---- failure, rollback, cancel -------------------------------------------------------------

    @Override
    public boolean cancel() {
        if (!commitPoint.cancel()) {
            return false;
        }
        inbox.add(new Inbox.Cancelled());
        FrameChannel c = control;
        if (c != null) {
            c.abort(ErrorCode.CANCELLED, "cancelled on the source");
        }
        closeChannels();
        return true;
    }

    private void fail(MigrationFailure failure) {
        CommitPoint.Failure state = commitPoint.fail();
        boolean wasCommitted = state.committed();
        boolean wasCancelled = state.byCancel();
        MigrationFailure reason = wasCancelled ? new MigrationFailure(MigrationFailure.CANCELLED, "cancelled by the operator")
                : failure;
        migration.setError(reason.code(), reason.getMessage());
        metrics.migrationFailed("source", reason.code());
        if (wasCommitted) {
            // F5: two running copies are never possible; an operator decides.
            closeChannels();
            managed.endMigration(VmState.PAUSED);
            LOG.error("migration {} of VM {}: {}", migration.id(), vm.id(), reason.getMessage());
            migration.enter(Phase.FAILED);
            return;
        }
        rollback(reason);
        LOG.warn("migration {} of VM {} rolled back: {}: {}", migration.id(), vm.id(), reason.code(), reason.getMessage());
        migration.enter(wasCancelled ? Phase.CANCELLED : Phase.FAILED);
    }

    /** F4: every device RUNNING (reset only in ERROR), tracking off, vCPUs as they were; nothing is lost. */
    private void rollback(MigrationFailure reason) {
        FrameChannel c = control;
        if (c != null && c.isOpen()) {
            c.abort(reason.wireCode(), reason.getMessage());
        }
        closeChannels();
        vm.memory().vcpuLog().stop();
        vm.iommu().stopDirtyTracking();
        vm.workload().setThrottle(0);
        for (Device device : devices) {
            if (device.state().isError()) {
                vm.resetDevice(device.id());
            }
        }
        // Back through the grace state: every device runs without starting DMA before any starts it,
        // so a restarting device never writes into a peer that is still stopped (F2 holds on rollback too).
        restore(d -> d.config().ndma() ? DeviceState.RUNNING_NDMA : DeviceState.RUNNING);
        restore(d -> DeviceState.RUNNING);
        if (vcpusWereRunning && !vm.vcpusRunning()) {
            vm.startVcpus();
        }
        managed.endMigration(vcpusWereRunning ? VmState.RUNNING : VmState.PAUSED);
    }

    private void restore(java.util.function.Function<Device, DeviceState> target) {
        for (Device device : devices) {
            DeviceState state = target.apply(device);
            if (device.state().equals(state)) {
                continue;
            }
            TransitionResult result = device.setState(state);
            if (!result.succeeded()) {
                LOG.warn("rollback: {} did not return to {} ({}); resetting it", device.id(), state, result.describe());
                vm.resetDevice(device.id());
            }
        }
    }

    /**
     * Closes every channel and waits until they are closed: pages sent without a copy are views of the
     * VM's memory, which must not be freed (the VM deleted) while a channel may still write them.
     */
    private void closeChannels() {
        FrameChannel c = control;
        if (c != null) {
            c.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
        }
        for (FrameChannel channel : data) {
            channel.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
        }
    }

    // ---- helpers -------------------------------------------------------------------------------

    private void step(Phase phase) throws MigrationFailure, InterruptedException {
        checkAbandoned();
        migration.enter(phase);
        faults.reached(migration, phase);
        checkAbandoned();
        if (control != null && phase != Phase.SETUP) {
            control.send(new Frame.Phase(wirePhase(phase).code(), iteration));
        }
    }

    private static PhaseCode wirePhase(Phase phase) {
        return PhaseCode.valueOf(phase.name());
    }

    /** Fails at once if cancelled, aborted by the destination, disconnected, or past the timeout. */
    private void checkAbandoned() throws MigrationFailure {
        if (commitPoint.cancelled()) {
            throw new MigrationFailure(MigrationFailure.CANCELLED, "cancelled");
        }
        Object broken = inbox.takeFirst(item -> item instanceof Inbox.Closed || item instanceof Frame.Abort
                || item instanceof Inbox.Cancelled);
        if (broken != null) {
            throw explain(broken);
        }
        long elapsed = System.nanoTime() - migration.startNanos();
        if (elapsed > TimeUnit.MILLISECONDS.toNanos(policy.timeoutMs())) {
            throw new MigrationFailure(MigrationFailure.TIMEOUT, "timeoutMs " + policy.timeoutMs() + " passed");
        }
    }

    /**
     * The next frame from the destination, which must be of {@code type}; an ITERATION_DONE that is not
     * awaited (the stop-and-copy iteration's) is passed over.
     */
    private <T extends Frame> T await(Class<T> type, Duration timeout, String what) throws MigrationFailure, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        Object item;
        do {
            item = inbox.poll(Duration.ofNanos(Math.max(0, deadline - System.nanoTime())));
        } while (item instanceof Frame.IterationDone && type != Frame.IterationDone.class);
        if (item == null) {
            throw new MigrationFailure(MigrationFailure.TIMEOUT, what + " within " + timeout.toSeconds() + " s");
        }
        if (type.isInstance(item)) {
            return type.cast(item);
        }
        if (item instanceof Frame frame && !(item instanceof Frame.Abort)) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "expected " + type.getSimpleName() + ", the destination sent " + frame.type());
        }
        throw explain(item);
    }

    /** A broken data channel is a symptom: the destination's reason, if it sends one soon, says more. */
    private MigrationFailure explain(Object item) {
        if (item instanceof Inbox.Closed closed && !closed.control()) {
            Object reason = inbox.awaitReason(REASON_WAIT);
            if (reason != null) {
                return failureOf(reason);
            }
        }
        return failureOf(item);
    }

    private MigrationFailure failureOf(Object item) {
        if (item instanceof Frame.Abort abort) {
            return new MigrationFailure(MigrationFailure.codeOf(abort.code()), "the destination aborted: " + abort.message());
        }
        if (item instanceof Inbox.Closed closed) {
            ProtocolException cause = closed.cause() != null ? closed.cause()
                    : new ProtocolException(ErrorCode.CONNECTION_LOST, "the destination closed the connection");
            return MigrationFailure.of(cause, "connection to " + policy.destination());
        }
        return new MigrationFailure(MigrationFailure.CANCELLED, "cancelled");
    }

    /** A send failed: the destination's own reason, if it sent one, says more than the broken channel. */
    private MigrationFailure failure(ProtocolException e, String during) {
        Object reason = inbox.awaitReason(REASON_WAIT);
        return reason != null ? failureOf(reason) : MigrationFailure.of(e, during);
    }

    private FrameChannel connect(dev.ferry.protocol.ChannelRole role, int index, FrameHandler handler)
            throws MigrationFailure, InterruptedException {
        try {
            return client.connect(policy.destination().resolve(), session, role, index, handler)
                    .get(ANSWER_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof ProtocolException p) {
                String code = p.code() == ErrorCode.CONNECTION_LOST ? MigrationFailure.CONNECTION_FAILED : MigrationFailure.codeOf(p.code());
                throw new MigrationFailure(code, "connecting to " + policy.destination() + ": " + p.getMessage());
            }
            throw new MigrationFailure(MigrationFailure.CONNECTION_FAILED, "connecting to " + policy.destination() + ": " + e.getCause());
        } catch (TimeoutException e) {
            throw new MigrationFailure(MigrationFailure.CONNECTION_FAILED, "no handshake with " + policy.destination() + " in time");
        }
    }
}
