package dev.ferry.orchestrator.migration;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The steps on the downtime's path (F6), on the source: from the vCPUs stopping (S4) to the
 * destination's confirmation. Each step ends where the next begins, so their durations add up to the
 * downtime: {@code vcpus_stop} (S4), {@code devices_stop} (the S5 barrier: every device quiesces and
 * captures its state), {@code final_transfer} (the last dirty pages and every device's remaining data,
 * to the end of the data channels), {@code prepare} (the destination takes the rest, loads every device
 * (R3) and, with verify, both sides digest the frozen VM), {@code switchover} (COMMIT, the destination's
 * devices and vCPUs restart (R4), CONFIRM).
 */
final class DowntimeSteps {
    private record Mark(String step, long endNanos) {
    }

    private final List<Mark> marks = new ArrayList<>();

    /** The step {@code step} ends now. */
    synchronized void ended(String step) {
        marks.add(new Mark(step, System.nanoTime()));
    }

    /** Each step as a span on the trace's downtime track. */
    synchronized void trace(MigrationTrace trace, long startNanos) {
        long from = startNanos;
        for (Mark mark : marks) {
            trace.span(MigrationTrace.DOWNTIME, mark.step(), from, mark.endNanos(), Map.of());
            from = mark.endNanos();
        }
    }

    /** The steps so far, each from the end of the one before (the first from {@code startNanos}). */
    synchronized List<MigrationView.DowntimeStep> steps(long startNanos) {
        List<MigrationView.DowntimeStep> steps = new ArrayList<>(marks.size());
        long from = startNanos;
        for (Mark mark : marks) {
            steps.add(new MigrationView.DowntimeStep(mark.step(), (mark.endNanos() - from) / 1e6));
            from = mark.endNanos();
        }
        return steps;
    }
}
