package dev.ferry.orchestrator.migration;

import dev.ferry.orchestrator.Managed;
import dev.ferry.orchestrator.Refusal;
import dev.ferry.orchestrator.capture.Captures;
import dev.ferry.orchestrator.config.FerrydConfig;
import dev.ferry.orchestrator.metrics.FerryMetrics;
import dev.ferry.orchestrator.vm.ManagedVm;
import dev.ferry.orchestrator.vm.VmManager;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.capture.CaptureFormat;
import dev.ferry.protocol.capture.CaptureTap;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.FrameHandler;
import dev.ferry.protocol.net.ProtocolClient;
import dev.ferry.protocol.net.SessionAcceptor;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The daemon's migrations, outgoing and incoming: starts save flows, accepts resume flows from the
 * migration listener, cancels, and keeps the running ones and the last finished ones for the API. On
 * stop it stops every running migration (each rolls back or discards within a second, SPEC F12) and
 * waits for them.
 */
public final class MigrationManager implements Managed, SessionAcceptor {
    private static final Logger LOG = LoggerFactory.getLogger(MigrationManager.class);
    /** How long stopping waits for the flows: they end within a second, or a switchover's bound after a commit. */
    private static final long STOP_WAIT_MILLIS = 5_000;

    private final FerrydConfig config;
    private final VmManager vms;
    private final ProtocolClient client;
    private final FerryMetrics metrics;
    private final FlowHooks hooks;
    private final Supplier<String> listener;
    private final Captures captures;
    /** F3: what switchovers to each destination cost beyond their data, for the next migrations' estimates. */
    private final SwitchoverCosts switchoverCosts = new SwitchoverCosts();
    private final ConcurrentMap<String, Migration> running = new ConcurrentHashMap<>();
    private final Deque<Migration> finished = new ArrayDeque<>();
    private final ConcurrentMap<SessionId, ResumeFlow> incoming = new ConcurrentHashMap<>();
    private final ExecutorService flows = Executors.newCachedThreadPool(named("ferry-migration"));
    private final ExecutorService workers = Executors.newCachedThreadPool(named("ferry-page-sender"));
    private final ScheduledExecutorService ticker = Executors.newSingleThreadScheduledExecutor(named("ferry-progress"));
    /** Guards starting against stopping: no flow starts once the manager stops. */
    private final Object lifecycle = new Object();
    private boolean stopping;

    /**
     * @param listener where this daemon takes migrations (the bound address), which a destination shows
     *                 as the source's {@code peer}
     * @param captures where captured sessions go
     */
    public MigrationManager(FerrydConfig config, VmManager vms, ProtocolClient client, FerryMetrics metrics, FlowHooks hooks,
                            Supplier<String> listener, Captures captures) {
        this.config = config;
        this.vms = vms;
        this.client = client;
        this.metrics = metrics;
        this.hooks = hooks;
        this.listener = listener;
        this.captures = captures;
        for (Role role : Role.values()) {
            metrics.gauge("ferry.migrations.active", "Migrations running", this, m -> m.count(role), "role", role.label());
        }
        metrics.gauge("ferry.migration.remaining.bytes", "Bytes the running migrations still have to send", this,
                sum(Migration::remainingBytes));
        metrics.gauge("ferry.migration.dirty.rate.bytes.per.second", "Guest memory dirtied per second, running migrations", this,
                sum(Migration::dirtyRate));
        metrics.gauge("ferry.migration.throughput.bytes.per.second", "Bytes per second the running migrations move now", this,
                sum(Migration::throughput));
    }

    @Override
    public void start() {
        // A task that throws ends a fixed-rate schedule: one migration's bad estimate must not freeze all.
        ticker.scheduleAtFixedRate(() -> running.values().forEach(migration -> {
            try {
                migration.tick();
            } catch (RuntimeException e) {
                LOG.warn("migration {}: progress update failed", migration.id(), e);
            }
        }), 250, 250, TimeUnit.MILLISECONDS);
    }

    /** Stops every running migration (sources roll back, destinations discard) and waits for them. */
    @Override
    public void stop() {
        synchronized (lifecycle) {
            stopping = true;
        }
        for (Migration migration : new ArrayList<>(running.values())) {
            Migration.Control control = migration.control();
            if (control != null && control.cancel(MigrationFailure.SHUTDOWN)) {
                LOG.info("shutting down: stopped migration {}", migration.id());
            }
        }
        flows.shutdown();
        try {
            if (!flows.awaitTermination(STOP_WAIT_MILLIS + config.timeouts().switchoverTimeoutMs(), TimeUnit.MILLISECONDS)) {
                LOG.warn("migrations still running when stopping: {}", running.keySet());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        workers.shutdownNow();
        ticker.shutdownNow();
    }

    // ---- outgoing ------------------------------------------------------------------------------

    /** Starts migrating a VM; the flow runs on its own thread. */
    public Migration start(MigrationPolicy policy) {
        if (policy.compression() != dev.ferry.protocol.compression.PageCodec.NONE) {
            try {
                policy.compression().check();
            } catch (IllegalStateException e) {
                throw Refusal.invalid(e.getMessage());
            }
        }
        if (policy.capture() && !captures.enabled()) {
            throw Refusal.invalid("capture needs a capture directory: this daemon was started without --capture-dir");
        }
        ManagedVm vm = vms.get(policy.vm());
        SessionId session = SessionId.random();
        Migration migration = new Migration(idOf(session), Role.SOURCE, vm.id(), policy.destination().toString(),
                Migration.policyView(policy));
        if (policy.dryRun()) {
            migration.markDryRun();
        }
        synchronized (lifecycle) {
            if (stopping) {
                throw Refusal.unavailable("shutting_down", "ferryd is shutting down");
            }
            boolean vcpusRunning = vms.claimForMigration(vm, migration.id());
            if (policy.capture()) {
                migration.setCapture(captures.open(migration.id(), CaptureFormat.Side.SOURCE, session, vm.id(), policy.capturePages(),
                        migration.startNanos()));
            }
            SaveFlow flow = new SaveFlow(migration, vm, policy, session, vcpusRunning, client, workers, metrics, hooks,
                    new SaveFlow.Timeouts(Duration.ofMillis(config.timeouts().switchoverTimeoutMs())), listener.get(), switchoverCosts);
            migration.setControl(flow);
            running.put(migration.id(), migration);
            // F3: past timeoutMs the migration gives up with timeout, in whatever wait it is.
            ScheduledFuture<?> deadline = ticker.schedule(() -> flow.cancel(MigrationFailure.TIMEOUT), policy.timeoutMs(),
                    TimeUnit.MILLISECONDS);
            try {
                flows.execute(() -> {
                    try {
                        flow.run();
                    } finally {
                        deadline.cancel(false);
                        finish(migration);
                    }
                });
            } catch (RejectedExecutionException e) {
                // Only while stopping, which the lock rules out; the VM must not stay claimed either way.
                deadline.cancel(false);
                running.remove(migration.id());
                if (migration.capture() != null) {
                    migration.capture().finish("not started: ferryd is shutting down");
                }
                vm.endMigration(vcpusRunning ? dev.ferry.orchestrator.vm.VmState.RUNNING : dev.ferry.orchestrator.vm.VmState.PAUSED);
                throw Refusal.unavailable("shutting_down", "ferryd is shutting down");
            }
        }
        metrics.migrationStarted(Role.SOURCE.label());
        LOG.info("migration {}: VM {} to {}", migration.id(), vm.id(), policy.destination());
        return migration;
    }

    // ---- incoming ------------------------------------------------------------------------------

    @Override
    public FrameHandler acceptControl(FrameChannel channel) throws ProtocolException {
        Migration migration = new Migration(idOf(channel.session()), Role.DESTINATION, null,
                channel.remoteAddress().getAddress().getHostAddress() + ":" + channel.remoteAddress().getPort(), Map.of());
        ResumeFlow flow = new ResumeFlow(migration, channel, vms, metrics, hooks, ticker,
                Duration.ofMillis(config.timeouts().handshakeTimeoutMs()), new Compatibility(config.kinds(), java.util.Set.copyOf(config.deviceKinds())),
                captures);
        synchronized (lifecycle) {
            if (stopping) {
                throw new ProtocolException(ErrorCode.SHUTDOWN, "ferryd is shutting down");
            }
            if (incoming.size() >= config.maxIncomingMigrations()) {
                throw new ProtocolException(ErrorCode.BUSY, "this daemon takes " + config.maxIncomingMigrations()
                        + " incoming migrations at once");
            }
            if (incoming.putIfAbsent(channel.session(), flow) != null) {
                throw new ProtocolException(ErrorCode.DUPLICATE_CHANNEL, "session " + channel.session() + " has a control channel");
            }
            migration.setControl(flow);
            running.put(migration.id(), migration);
            if (captures.enabled()) {
                // Whether to capture is the source's description's to say; what comes before it is kept meanwhile.
                flow.captureFrom(CaptureTap.pending(channel));
            }
            try {
                flows.execute(() -> {
                    try {
                        flow.run();
                    } finally {
                        incoming.remove(channel.session(), flow);
                        finish(migration);
                    }
                });
            } catch (RejectedExecutionException e) {
                incoming.remove(channel.session(), flow);
                running.remove(migration.id());
                throw new ProtocolException(ErrorCode.SHUTDOWN, "ferryd is shutting down");
            }
        }
        metrics.migrationStarted(Role.DESTINATION.label());
        return flow;
    }

    @Override
    public FrameHandler acceptData(FrameChannel channel) throws ProtocolException {
        ResumeFlow flow = incoming.get(channel.session());
        if (flow == null) {
            throw new ProtocolException(ErrorCode.UNKNOWN_SESSION, "no migration with session " + channel.session());
        }
        return flow.acceptData(channel);
    }

    // ---- the API's view ------------------------------------------------------------------------

    public Migration get(String id) {
        Migration migration = running.get(id);
        if (migration != null) {
            return migration;
        }
        synchronized (finished) {
            for (Migration done : finished) {
                if (done.id().equals(id)) {
                    return done;
                }
            }
        }
        throw Refusal.notFound("migration_not_found", "no migration " + id);
    }

    /** Running migrations, then finished ones, newest first. */
    public List<Migration> list() {
        List<Migration> all = new ArrayList<>(running.values());
        all.sort(Comparator.comparing(Migration::startNanos).reversed());
        synchronized (finished) {
            all.addAll(finished);
        }
        return all;
    }

    /**
     * Cancels a migration: it stops within a second and rolls back (source) or discards its copy
     * (destination). Too late once the commit is written (409 {@code too_late}).
     */
    public Migration cancel(String id) {
        Migration migration = get(id);
        if (migration.finished()) {
            throw Refusal.conflict("migration_finished", "migration " + id + " already ended: " + migration.phase().label());
        }
        Migration.Control control = migration.control();
        if (control == null || !control.cancel(MigrationFailure.CANCELLED)) {
            throw Refusal.conflict("too_late", "migration " + id + " is past its commit: the VM runs on the destination");
        }
        return migration;
    }

    /** New settings for a running source migration (QEMU's migrate-set-parameters). */
    public Migration update(String id, Migration.Parameters parameters) {
        Migration migration = get(id);
        if (migration.finished()) {
            throw Refusal.conflict("migration_finished", "migration " + id + " already ended: " + migration.phase().label());
        }
        Migration.Control control = migration.control();
        if (control == null) {
            throw Refusal.conflict("too_late", "migration " + id + " is ending");
        }
        control.update(parameters);
        return migration;
    }

    private void finish(Migration migration) {
        running.remove(migration.id());
        synchronized (finished) {
            finished.addFirst(migration);
            while (finished.size() > config.migrationHistory()) {
                finished.removeLast();
            }
        }
        if (migration.dryRun()) {
            metrics.dryRunFinished(migration.role().label());
        } else {
            metrics.migrationFinished(migration.role().label(), migration.phase().label(),
                    System.nanoTime() - migration.startNanos());
        }
    }

    private int count(Role role) {
        int n = 0;
        for (Migration migration : running.values()) {
            if (migration.role() == role) {
                n++;
            }
        }
        return n;
    }

    private static ToDoubleFunction<MigrationManager> sum(ToDoubleFunction<Migration> value) {
        return manager -> manager.running.values().stream().mapToDouble(value).sum();
    }

    /** Both ends derive the same id from the session, so a migration has one id on both daemons. */
    static String idOf(SessionId session) {
        return "mig-" + session.toString().substring(0, 12);
    }

    private static ThreadFactory named(String prefix) {
        AtomicInteger next = new AtomicInteger();
        return runnable -> {
            Thread thread = new Thread(runnable, prefix + "-" + next.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        };
    }
}
