package dev.ferry.device.migration;

import static dev.ferry.device.migration.MigrationState.ERROR;
import static dev.ferry.device.migration.MigrationState.PRE_COPY;
import static dev.ferry.device.migration.MigrationState.PRE_COPY_P2P;
import static dev.ferry.device.migration.MigrationState.RESUMING;
import static dev.ferry.device.migration.MigrationState.RUNNING;
import static dev.ferry.device.migration.MigrationState.RUNNING_P2P;
import static dev.ferry.device.migration.MigrationState.STOP;
import static dev.ferry.device.migration.MigrationState.STOP_COPY;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The kernel's next-state rule for v2 combination transitions (V1, V2).
 *
 * <p>For a device with every optional state the next arc from {@code cur} towards {@code target}
 * is the first arc of the shortest path whose interior never touches a saving state. A device
 * without an optional state skips it: the rule is applied again from the skipped state, exactly as
 * {@code vfio_mig_get_next_state()} does. STOP_COPY towards PRE_COPY or PRE_COPY_P2P has no arc
 * at all (V2): a stop-and-copy never goes back to pre-copy.
 */
public final class NextStateRule {
    private static final Map<MigrationState, Map<MigrationState, MigrationState>> NEXT = new EnumMap<>(MigrationState.class);

    static {
        row(STOP, STOP, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P, STOP_COPY, RESUMING, RUNNING_P2P);
        row(RUNNING, RUNNING_P2P, RUNNING, PRE_COPY, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P);
        row(PRE_COPY, RUNNING, RUNNING, PRE_COPY, PRE_COPY_P2P, PRE_COPY_P2P, RUNNING, RUNNING);
        row(PRE_COPY_P2P, RUNNING_P2P, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P, STOP_COPY, RUNNING_P2P, RUNNING_P2P);
        row(STOP_COPY, STOP, STOP, ERROR, ERROR, STOP_COPY, STOP, STOP);
        row(RESUMING, STOP, STOP, STOP, STOP, STOP, RESUMING, STOP);
        row(RUNNING_P2P, STOP, RUNNING, RUNNING, PRE_COPY_P2P, STOP, STOP, RUNNING_P2P);
        row(ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR);
    }

    private NextStateRule() {
    }

    /** Targets, in the column order of {@link #row}: STOP, RUNNING, PRE_COPY, PRE_COPY_P2P, STOP_COPY, RESUMING, RUNNING_P2P. */
    private static void row(MigrationState from, MigrationState... next) {
        MigrationState[] targets = {STOP, RUNNING, PRE_COPY, PRE_COPY_P2P, STOP_COPY, RESUMING, RUNNING_P2P};
        Map<MigrationState, MigrationState> row = new EnumMap<>(MigrationState.class);
        for (int i = 0; i < targets.length; i++) {
            row.put(targets[i], next[i]);
        }
        row.put(ERROR, ERROR);
        NEXT.put(from, row);
    }

    /**
     * The next state on the way from {@code cur} to {@code target} for a device with {@code flags},
     * or empty when the request must fail at once: the target or the current state is not one the
     * device has (ERROR included), or there is no path (STOP_COPY towards pre-copy).
     */
    public static Optional<MigrationState> next(MigrationFlags flags, MigrationState cur, MigrationState target) {
        if (!cur.supportedBy(flags) || !target.supportedBy(flags)) {
            return Optional.empty();
        }
        MigrationState next = NEXT.get(cur).get(target);
        while (next != ERROR && !next.supportedBy(flags)) {
            next = NEXT.get(next).get(target);
        }
        return next == ERROR ? Optional.empty() : Optional.of(next);
    }

    /** The whole path from {@code cur} to {@code target}, excluding {@code cur}; empty when already there. */
    public static Optional<List<MigrationState>> path(MigrationFlags flags, MigrationState cur, MigrationState target) {
        List<MigrationState> path = new ArrayList<>();
        MigrationState at = cur;
        while (at != target) {
            Optional<MigrationState> next = next(flags, at, target);
            if (next.isEmpty()) {
                return Optional.empty();
            }
            at = next.get();
            path.add(at);
            if (path.size() > MigrationState.values().length) {
                throw new IllegalStateException("next-state rule loops from " + cur + " to " + target);
            }
        }
        return Optional.of(List.copyOf(path));
    }
}
