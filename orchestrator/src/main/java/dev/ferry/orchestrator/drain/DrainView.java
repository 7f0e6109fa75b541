package dev.ferry.orchestrator.drain;

import dev.ferry.orchestrator.migration.MigrationView;
import java.util.List;

/**
 * The Drain resource: where it goes, how many migrations at once, its state ({@code running},
 * {@code cancelling}, then {@code completed} when every VM was migrated, {@code failed} when some
 * were not, or {@code cancelled}), the bytes its migrations sent and still have to send, each VM's
 * part, and the counts.
 */
public record DrainView(String id, String destination, int maxParallel, String state, String startedAt, String finishedAt,
                        long transferredBytes, long remainingBytes, List<VmEntry> vms, Summary summary) {

    /**
     * One VM of the drain: {@code pending} (not started yet), {@code migrating}, then
     * {@code completed}, {@code failed} (its migration failed, or could not start: {@code error} says
     * why) or {@code cancelled} (its migration was cancelled, or the drain was before it started); its
     * migration's id, phase, bytes and times once it has one.
     */
    public record VmEntry(String vm, String state, String migration, String phase, long transferredBytes, long remainingBytes,
                          String startedAt, String finishedAt, MigrationView.ErrorView error) {
    }

    /** How many VMs are in each state. */
    public record Summary(int total, int pending, int migrating, int completed, int failed, int cancelled) {
    }
}
