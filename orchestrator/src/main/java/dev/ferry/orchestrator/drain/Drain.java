package dev.ferry.orchestrator.drain;

import dev.ferry.orchestrator.Refusal;
import dev.ferry.orchestrator.api.Json;
import dev.ferry.orchestrator.api.Requests;
import dev.ferry.orchestrator.migration.Migration;
import dev.ferry.orchestrator.migration.MigrationManager;
import dev.ferry.orchestrator.migration.MigrationPolicy;
import dev.ferry.orchestrator.migration.MigrationView;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One drain: a fixed list of VMs migrated to one destination, at most {@code maxParallel} at once
 * (KubeVirt's {@code parallelOutboundMigrationsPerNode}), the next one started as soon as one ends.
 * Migrations are started through {@link MigrationManager#start} with the default settings, and their
 * ends are learned from their event streams ({@link Migration#subscribe}); the work that follows an end
 * runs on the drains' own thread, never on the migration's. A cancel starts no more migrations and
 * cancels the running ones; those past their commit complete.
 */
final class Drain {
    private static final Logger LOG = LoggerFactory.getLogger(Drain.class);

    /** A VM's part in the drain. */
    enum VmState {
        PENDING, MIGRATING, COMPLETED, FAILED, CANCELLED;

        String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    private static final class Entry {
        final String vm;
        VmState state = VmState.PENDING;
        Migration migration;
        MigrationView.ErrorView error;
        boolean ended;

        Entry(String vm) {
            this.vm = vm;
        }
    }

    private final String id;
    private final String destination;
    private final int maxParallel;
    private final MigrationManager migrations;
    private final Executor executor;
    private final List<Entry> entries = new ArrayList<>();
    private final Instant startedAt = Instant.now();
    private Instant finishedAt;
    private int running;
    private boolean cancelled;
    private boolean stopped;

    Drain(String id, String destination, int maxParallel, List<String> vms, MigrationManager migrations, Executor executor) {
        this.id = id;
        this.destination = destination;
        this.maxParallel = maxParallel;
        this.migrations = migrations;
        this.executor = executor;
        vms.forEach(vm -> entries.add(new Entry(vm)));
    }

    String id() {
        return id;
    }

    synchronized boolean finished() {
        return finishedAt != null;
    }

    /** Starts migrations while there are free slots and VMs waiting; ends the drain when none is left. */
    synchronized void fill() {
        for (Entry entry : entries) {
            if (cancelled || stopped || running >= maxParallel) {
                break;
            }
            if (entry.state == VmState.PENDING) {
                start(entry);
            }
        }
        if (finishedAt == null && running == 0 && (cancelled || entries.stream().noneMatch(e -> e.state == VmState.PENDING))) {
            finishedAt = Instant.now();
            DrainView.Summary counts = summary();
            LOG.info("{} ended {}: {} VMs, {} completed, {} failed, {} cancelled", id, state(), counts.total(), counts.completed(),
                    counts.failed(), counts.cancelled());
        }
    }

    private void start(Entry entry) {
        try {
            // The request a client would post, so that every other setting takes the API's default (and
            // settings the request gains later need no change here).
            Requests.StartMigration request = Json.mapper().convertValue(Map.of("vm", entry.vm, "destination", destination),
                    Requests.StartMigration.class);
            Migration migration = migrations.start(MigrationPolicy.from(request));
            entry.migration = migration;
            entry.state = VmState.MIGRATING;
            running++;
            LOG.info("{}: migrating VM {} ({})", id, entry.vm, migration.id());
            migration.subscribe(event -> {
                if (event.type().equals("end")) {
                    try {
                        executor.execute(() -> ended(entry));
                    } catch (RejectedExecutionException e) {
                        // The daemon is stopping: no drain goes on.
                    }
                }
            });
        } catch (Refusal refusal) {
            // The VM went away, or was taken by another migration, since the drain began.
            entry.state = VmState.FAILED;
            entry.error = new MigrationView.ErrorView(refusal.code(), refusal.getMessage(), refusal.details());
            LOG.info("{}: VM {} not migrated: {}", id, entry.vm, refusal.getMessage());
        }
    }

    private synchronized void ended(Entry entry) {
        if (entry.ended) {
            return;
        }
        entry.ended = true;
        running--;
        String phase = entry.migration.phase().label();
        entry.state = switch (phase) {
            case "completed" -> VmState.COMPLETED;
            case "cancelled" -> VmState.CANCELLED;
            default -> VmState.FAILED;
        };
        entry.error = entry.migration.error();
        fill();
    }

    /** Starts no more migrations and cancels the running ones (each rolls back unless past its commit). */
    synchronized void cancel() {
        cancelled = true;
        for (Entry entry : entries) {
            if (entry.state == VmState.PENDING) {
                entry.state = VmState.CANCELLED;
            } else if (entry.state == VmState.MIGRATING) {
                try {
                    migrations.cancel(entry.migration.id());
                } catch (Refusal tooLate) {
                    // Past its commit, or just ended: it ends as it will, and its end is counted.
                }
            }
        }
        fill();
    }

    /** The daemon stops: no more migrations start (the manager stops the running ones). */
    synchronized void stop() {
        stopped = true;
    }

    private String state() {
        if (finishedAt == null) {
            return cancelled ? "cancelling" : "running";
        }
        if (cancelled) {
            return "cancelled";
        }
        return entries.stream().allMatch(e -> e.state == VmState.COMPLETED) ? "completed" : "failed";
    }

    private DrainView.Summary summary() {
        int[] counts = new int[VmState.values().length];
        entries.forEach(e -> counts[e.state.ordinal()]++);
        return new DrainView.Summary(entries.size(), counts[VmState.PENDING.ordinal()], counts[VmState.MIGRATING.ordinal()],
                counts[VmState.COMPLETED.ordinal()], counts[VmState.FAILED.ordinal()], counts[VmState.CANCELLED.ordinal()]);
    }

    synchronized DrainView view() {
        List<DrainView.VmEntry> vms = new ArrayList<>();
        long transferred = 0;
        long remaining = 0;
        for (Entry entry : entries) {
            if (entry.migration == null) {
                vms.add(new DrainView.VmEntry(entry.vm, entry.state.label(), null, null, 0, 0, null, null, entry.error));
                continue;
            }
            MigrationView migration = entry.migration.view();
            transferred += migration.transferredBytes();
            remaining += migration.remainingBytes();
            vms.add(new DrainView.VmEntry(entry.vm, entry.state.label(), migration.id(), migration.phase(),
                    migration.transferredBytes(), migration.remainingBytes(), migration.startedAt(), migration.finishedAt(),
                    entry.error != null ? entry.error : migration.error()));
        }
        return new DrainView(id, destination, maxParallel, state(), startedAt.toString(),
                finishedAt == null ? null : finishedAt.toString(), transferred, remaining, List.copyOf(vms), summary());
    }
}
