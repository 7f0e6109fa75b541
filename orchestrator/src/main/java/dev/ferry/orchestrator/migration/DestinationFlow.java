package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.device.memory.GuestMemory;
import dev.ferry.device.memory.Pages;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.GraceStates;
import dev.ferry.device.vm.Vm;
import dev.ferry.orchestrator.api.ApiException;
import dev.ferry.orchestrator.metrics.FerryMetrics;
import dev.ferry.orchestrator.vm.ManagedVm;
import dev.ferry.orchestrator.vm.VmManager;
import dev.ferry.orchestrator.vm.VmState;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.MigrationPhase;
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
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
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

    private record Closed(ProtocolException cause) {
    }

    private record Cancelled() {
    }

    private final Migration migration;
    private final FrameChannel control;
    private final VmManager vms;
    private final FerryMetrics metrics;
    private final FaultInjector faults;
    private final BlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
    private final AtomicLong queuedBytes = new AtomicLong();
    private final Map<Integer, PageReceiver> receivers = new ConcurrentHashMap<>();
    private final List<FrameChannel> dataChannels = new java.util.concurrent.CopyOnWriteArrayList<>();
    private volatile boolean discarded;
    private Thread prefault;
    private final Object commitLock = new Object();
    private boolean committed;
    private boolean cancelled;
    private volatile ManagedVm managed;
    private volatile int channels;
    private List<Device> devices;
    private long[] offsets;
    private boolean[] ended;
    private String sourcePhase = MigrationPhase.SETUP.label();
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
        if (frame instanceof Frame.DeviceData chunk && queuedBytes.addAndGet(chunk.content().readableBytes()) > QUEUE_HIGH) {
            channel.pauseReading();
        }
        inbox.add(frame);
    }

    @Override
    public void channelClosed(FrameChannel channel, ProtocolException cause) {
        inbox.add(new Closed(cause));
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
        PageReceiver receiver = new PageReceiver((index, data) -> {
            if (discarded) {
                return;
            }
            if (data == null) {
                memory.loadZeroPage(index);
                migration.zeroPages.incrementAndGet();
            } else {
                memory.loadPage(index, data);
            }
            migration.memoryTransferred.addAndGet(Pages.PAGE_SIZE);
        });
        if (receivers.putIfAbsent(channel.index(), receiver) != null) {
            throw new ProtocolException(ErrorCode.DUPLICATE_CHANNEL, "data channel " + channel.index() + " is open already");
        }
        channel.setPageRouting(new PageRouting(memory.pages(), channels, channel.index()));
        dataChannels.add(channel);
        return new FrameHandler() {
            @Override
            public void frameReceived(FrameChannel ch, Frame frame) {
                if (frame instanceof Frame.Pages pages) {
                    long bytes = pages.content().readableBytes() + 16;
                    migration.wireBytes.addAndGet(bytes);
                    metrics.received(sourcePhase, "memory", bytes);
                } else if (frame instanceof Frame.Abort abort) {
                    inbox.add(abort);
                }
                receiver.frameReceived(ch, frame);
            }

            @Override
            public void channelClosed(FrameChannel ch, ProtocolException cause) {
                receiver.channelClosed(ch, cause);
                if (cause != null) {
                    inbox.add(new Closed(cause));
                }
            }
        };
    }

    // ---- the flow ------------------------------------------------------------------------------

    void run() {
        try {
            Frame.VmDescription described = (Frame.VmDescription) next();
            build(described);
            prepared(receive());
            awaitCommit();
            resume();
            migration.enter(Phase.COMPLETED);
            LOG.info("incoming migration {} of VM {} completed", migration.id(), migration.vm());
        } catch (MigrationFailure failure) {
            fail(failure);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail(new MigrationFailure(MigrationFailure.SHUTDOWN, "interrupted"));
        } catch (RuntimeException e) {
            LOG.error("incoming migration {} failed", migration.id(), e);
            fail(new MigrationFailure(MigrationFailure.INTERNAL, e.toString()));
        }
    }

    /** R1: the description checked and the empty VM built; R2: every device RESUMING. */
    private void build(Frame.VmDescription described) throws MigrationFailure, InterruptedException {
        description = VmDescription.parse(described.description());
        if (described.pageSize() != Pages.PAGE_SIZE || described.memoryBytes() != description.memoryBytes()) {
            throw new MigrationFailure(MigrationFailure.INCOMPATIBLE, "memory of " + described.memoryBytes() + " bytes in "
                    + described.pageSize() + "-byte pages does not match the description");
        }
        migration.setVm(description.id());
        dev.ferry.device.vm.VmConfig config = description.config();
        try {
            vms.checkLimits(config);
            Vm vm = VmManager.deviceModel(() -> Vm.incoming(config, description.slots(), Vm.Options.DEFAULT));
            managed = vms.adoptIncoming(vm, migration.id());
        } catch (ApiException e) {
            String code = e.code().equals("duplicate_id") ? ErrorCode.DUPLICATE_VM.label()
                    : e.code().equals("too_many_vms") ? ErrorCode.BUSY.label() : MigrationFailure.INCOMPATIBLE;
            throw new MigrationFailure(code, e.getMessage());
        }
        Vm vm = managed.vm();
        prefault(vm, description.backed(), description.chunkBytes());
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
     * Allocates the chunks of memory the source says hold data, in address order, on a thread of its
     * own: the pages then land in memory that is already there, and the event loops that receive them
     * never stop to allocate and zero it.
     */
    private void prefault(Vm vm, java.util.BitSet backed, int chunkBytes) {
        dev.ferry.device.memory.PageStore store = vm.memory().store();
        if (chunkBytes != store.chunkBytes() || backed.isEmpty()) {
            return;
        }
        prefault = new Thread(() -> {
            for (int chunk = backed.nextSetBit(0); chunk >= 0 && chunk < store.chunks() && !discarded;
                 chunk = backed.nextSetBit(chunk + 1)) {
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
                try {
                    apply(chunk);
                } finally {
                    chunk.release();
                }
            } else if (item instanceof Frame.DeviceEnd end) {
                int index = deviceIndex(end.device());
                if (end.totalBytes() != offsets[index]) {
                    throw new MigrationFailure("protocol_error", "device " + devices.get(index).id() + " ended at "
                            + end.totalBytes() + " bytes, " + offsets[index] + " arrived");
                }
                ended[index] = true;
            } else if (item instanceof Frame.Phase phase) {
                MigrationPhase p = MigrationPhase.of(phase.phase());
                sourcePhase = p == null ? sourcePhase : p.label();
            } else if (item instanceof Frame.IterationEnd end) {
                if (MigrationPhase.PRECOPY.label().equals(sourcePhase)) {
                    migration.iterations.set(end.iteration() + 1L);
                }
            } else if (item instanceof Frame.Prepare prepare) {
                return prepare;
            } else {
                throw new MigrationFailure("protocol_error", "unexpected " + ((Frame) item).type() + " before PREPARE");
            }
        }
    }

    private void apply(Frame.DeviceData chunk) throws MigrationFailure {
        int index = deviceIndex(chunk.device());
        if (chunk.offset() != offsets[index] || ended[index]) {
            throw new MigrationFailure("protocol_error", "data of device " + devices.get(index).id() + " at offset "
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
            throw new MigrationFailure("protocol_error", "device index " + index + " of a VM with " + devices.size() + " devices");
        }
        return index;
    }

    /** Every data channel ended, every device's stream ended; R3: load and wait at the barrier; PREPARED. */
    private void prepared(Frame.Prepare prepare) throws MigrationFailure, InterruptedException {
        long start = System.nanoTime();
        if (receivers.size() != channels) {
            throw new MigrationFailure("protocol_error", receivers.size() + " of " + channels + " data channels arrived");
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
                throw new MigrationFailure("protocol_error", "device " + devices.get(i).id() + " sent no end of its data");
            }
        }
        GraceBarrier.apply(devices, d -> GraceStates.resumeGrace(d.config().ndma()), "R3 load and P2P grace",
                MigrationFailure.DEVICE_LOAD_FAILED);
        migration.enter(Phase.P2P_GRACE);
        faults.reached(migration, Phase.P2P_GRACE);
        byte[] digest = prepare.verify() ? HexFormat.of().parseHex(managed.vm().digest().vm()) : new byte[0];
        control.send(new Frame.Prepared(digest, TimeUnit.NANOSECONDS.toMicros(System.nanoTime() - start)));
    }

    private void awaitCommit() throws MigrationFailure, InterruptedException {
        Object item = next();
        while (item instanceof Frame.Phase phase) {
            MigrationPhase p = MigrationPhase.of(phase.phase());
            sourcePhase = p == null ? sourcePhase : p.label();
            item = next();
        }
        if (!(item instanceof Frame.Commit)) {
            throw new MigrationFailure("protocol_error", "expected COMMIT, got " + ((Frame) item).type());
        }
        synchronized (commitLock) {
            if (cancelled) {
                throw new MigrationFailure(MigrationFailure.CANCELLED, "cancelled before the commit arrived");
            }
            committed = true;
        }
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
        synchronized (commitLock) {
            if (committed) {
                return false;
            }
            cancelled = true;
        }
        inbox.add(new Cancelled());
        control.abort(ErrorCode.CANCELLED, "cancelled on the destination");
        return true;
    }

    private void fail(MigrationFailure failure) {
        boolean wasCommitted;
        boolean wasCancelled;
        synchronized (commitLock) {
            wasCommitted = committed;
            wasCancelled = cancelled && !committed;
            if (!committed) {
                cancelled = true;
            }
        }
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
        Object item = inbox.poll(FRAME_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        if (item == null) {
            throw new MigrationFailure(MigrationFailure.TIMEOUT, "nothing from the source for " + FRAME_TIMEOUT.toSeconds() + " s");
        }
        if (item instanceof Frame.Abort abort) {
            throw new MigrationFailure(MigrationFailure.codeOf(abort.code()), "the source aborted: " + abort.message());
        }
        if (item instanceof Closed closed) {
            ProtocolException cause = closed.cause() != null ? closed.cause()
                    : new ProtocolException(ErrorCode.CONNECTION_LOST, "the source closed the connection");
            throw MigrationFailure.of(cause, "connection from the source");
        }
        if (item instanceof Cancelled) {
            throw new MigrationFailure(MigrationFailure.CANCELLED, "cancelled");
        }
        return item;
    }
}
