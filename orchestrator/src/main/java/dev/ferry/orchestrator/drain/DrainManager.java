package dev.ferry.orchestrator.drain;

import dev.ferry.orchestrator.Managed;
import dev.ferry.orchestrator.Refusal;
import dev.ferry.orchestrator.config.Endpoint;
import dev.ferry.orchestrator.migration.MigrationManager;
import dev.ferry.orchestrator.vm.ManagedVm;
import dev.ferry.orchestrator.vm.VmManager;
import dev.ferry.orchestrator.vm.VmState;
import dev.ferry.protocol.SessionId;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Host drain: migrates every VM of this daemon to one destination, a few at a time. One drain runs at
 * a time; the last one, running or ended, is what {@code GET /v1/drain} shows until the next starts.
 * The VMs are those running or paused when it starts: not those held for an operator (F5), being
 * migrated, incoming or already migrated away, nor VMs created after it started.
 */
public final class DrainManager implements Managed {
    /** KubeVirt's default for {@code parallelOutboundMigrationsPerNode}. */
    public static final int DEFAULT_MAX_PARALLEL = 2;
    public static final int MAX_PARALLEL = 16;

    private final VmManager vms;
    private final MigrationManager migrations;
    private final ExecutorService executor = Executors.newSingleThreadExecutor(runnable -> {
        Thread thread = new Thread(runnable, "ferry-drain");
        thread.setDaemon(true);
        return thread;
    });
    private Drain last;
    private boolean stopping;

    public DrainManager(VmManager vms, MigrationManager migrations) {
        this.vms = vms;
        this.migrations = migrations;
    }

    @Override
    public void start() {
    }

    /** No migration starts from here any more; the migration manager, stopped next, stops the running ones. */
    @Override
    public void stop() {
        synchronized (this) {
            stopping = true;
            if (last != null) {
                last.stop();
            }
        }
        executor.shutdownNow();
    }

    /** Starts a drain to {@code destination} ({@code HOST:PORT}) with at most {@code maxParallel} migrations at once. */
    public synchronized DrainView start(String destination, Integer maxParallel) {
        if (destination == null) {
            throw Refusal.invalid("destination is required, as HOST:PORT of the destination's migration listener");
        }
        Endpoint endpoint;
        try {
            endpoint = Endpoint.parse(destination);
        } catch (IllegalArgumentException e) {
            throw Refusal.invalid("destination: " + e.getMessage());
        }
        if (endpoint.port() == 0) {
            throw Refusal.invalid("destination needs a port");
        }
        int parallel = maxParallel == null ? DEFAULT_MAX_PARALLEL : maxParallel;
        if (parallel < 1 || parallel > MAX_PARALLEL) {
            throw Refusal.invalid("maxParallel must be between 1 and " + MAX_PARALLEL);
        }
        if (stopping) {
            throw Refusal.unavailable("shutting_down", "ferryd is shutting down");
        }
        if (last != null && !last.finished()) {
            throw Refusal.conflict("drain_in_progress", last.id() + " is under way; cancel it (DELETE /v1/drain) or wait for its end",
                    Map.of("drain", last.id()));
        }
        List<String> ids = vms.list().stream().filter(DrainManager::drainable).map(ManagedVm::id).toList();
        Drain drain = new Drain("drain-" + SessionId.random().toString().substring(0, 12), endpoint.toString(), parallel, ids,
                migrations, executor);
        last = drain;
        // Answered as started: no migration's end is taken in between.
        synchronized (drain) {
            drain.fill();
            return drain.view();
        }
    }

    /** The drain under way, or the last one. */
    public synchronized DrainView current() {
        return drain().view();
    }

    /** Cancels the drain under way: no more migrations start, the running ones are cancelled. */
    public DrainView cancel() {
        Drain drain;
        synchronized (this) {
            drain = drain();
        }
        if (drain.finished()) {
            throw Refusal.conflict("drain_finished", drain.id() + " has ended", Map.of("drain", drain.id()));
        }
        drain.cancel();
        return drain.view();
    }

    private Drain drain() {
        if (last == null) {
            throw Refusal.notFound("no_drain", "no drain has run on this daemon");
        }
        return last;
    }

    private static boolean drainable(ManagedVm vm) {
        return (vm.state() == VmState.RUNNING || vm.state() == VmState.PAUSED) && vm.heldBy() == null;
    }
}
