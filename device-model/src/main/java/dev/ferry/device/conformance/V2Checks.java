package dev.ferry.device.conformance;

import static dev.ferry.device.migration.MigrationState.ERROR;
import static dev.ferry.device.migration.MigrationState.PRE_COPY;
import static dev.ferry.device.migration.MigrationState.PRE_COPY_P2P;
import static dev.ferry.device.migration.MigrationState.RESUMING;
import static dev.ferry.device.migration.MigrationState.RUNNING;
import static dev.ferry.device.migration.MigrationState.RUNNING_P2P;
import static dev.ferry.device.migration.MigrationState.STOP;
import static dev.ferry.device.migration.MigrationState.STOP_COPY;

import dev.ferry.device.Device;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceFaults;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.MigrationFlags;
import dev.ferry.device.migration.MigrationState;
import dev.ferry.device.migration.TransitionStep;
import dev.ferry.device.vm.Vm;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The v2 interface on the same devices (SPEC §3). The oracle is the kit's own, independent of the device's
 * table: a breadth-first search over the arcs the kernel's documentation requires of a driver with the device's
 * flags, choosing the shortest path whose interior touches no saving state (unless it runs from one saving
 * state to another), and demanding that this path be unique.
 */
final class V2Checks {
    private V2Checks() {
    }

    /** V1 and V2: every (from, to) pair of every configuration. */
    static String walks(Rig rig, boolean immediateFailures) {
        int pairs = 0;
        for (DeviceConfig config : rig.configs()) {
            MigrationFlags flags = new MigrationFlags(config.ndma(), config.preCopy());
            byte[] stream = rig.twinStream(config);
            try (Vm vm = rig.boot(config)) {
                Probe probe = new Probe(vm);
                for (MigrationState from : MigrationState.values()) {
                    if (from != ERROR && !from.supportedBy(flags)) {
                        continue;
                    }
                    for (MigrationState to : MigrationState.values()) {
                        Optional<List<MigrationState>> expected = oracle(flags, from, to);
                        if (expected.isEmpty() != immediateFailures) {
                            continue;
                        }
                        probe.begin();
                        reach(probe, from, stream);
                        Device.V2Result result = probe.v2(to);
                        DeviceState now = probe.device().state();
                        if (expected.isEmpty()) {
                            if (result.succeeded() || !result.path().isEmpty() || !now.equals(from.v1())) {
                                throw probe.violation(flags + ": " + from + " -> " + to + " must fail at once with the state unchanged");
                            }
                        } else if (!result.succeeded() || !result.path().equals(expected.get()) || !now.equals(to.v1())) {
                            throw probe.violation(flags + ": " + from + " -> " + to + " should walk " + expected.get() + ", walked "
                                    + result.path() + " to " + now + " (" + result.last().describe() + ")");
                        }
                        pairs++;
                    }
                }
                if (immediateFailures) {
                    // A state with no v2 twin (a superfluous NDMA) cannot start a walk either.
                    if (config.ndma()) {
                        probe.begin();
                        probe.require(DeviceState.of(8));
                        Device.V2Result result = probe.v2(RUNNING);
                        if (result.succeeded() || !probe.device().state().equals(DeviceState.of(8))) {
                            throw probe.violation("a walk from a state with no v2 twin (8) was not refused unchanged");
                        }
                        pairs++;
                    }
                }
            }
        }
        return pairs + " (state, target) pairs of " + (immediateFailures ? "requests that must fail at once" : "walks")
                + " in every configuration";
    }

    /**
     * V3: an arc that fails leaves the device where the walk stopped. Each arc of each walk of two or more arcs is
     * made to fail in turn, refused and into ERROR, with a fault injected into the device's state writes.
     */
    static String failingArcs(Rig rig) {
        int cases = 0;
        for (DeviceConfig base : rig.configs()) {
            MigrationFlags flags = new MigrationFlags(base.ndma(), base.preCopy());
            for (MigrationState from : List.of(RUNNING, STOP)) {
                for (MigrationState to : MigrationState.values()) {
                    Optional<List<MigrationState>> path = oracle(flags, from, to);
                    if (path.isEmpty() || path.get().size() < 2) {
                        continue;
                    }
                    List<MigrationState> arcs = path.get();
                    for (int failing = 0; failing < arcs.size(); failing++) {
                        DeviceState arcFrom = failing == 0 ? from.v1() : arcs.get(failing - 1).v1();
                        List<TransitionStep> steps = Device.priorityOrder(arcFrom, arcs.get(failing).v1());
                        if (steps.isEmpty()) {
                            continue;
                        }
                        for (boolean intoError : new boolean[] {false, true}) {
                            DeviceFaults faults = new DeviceFaults(List.of(new DeviceFaults.StateWriteFault(steps.get(0),
                                    occurrence(from, arcs, failing, steps.get(0)), intoError)),
                                    DeviceFaults.WindowFault.NONE, DeviceFaults.WindowFault.NONE, -1, 0);
                            try (Vm vm = rig.boot(base.withFaults(faults))) {
                                Probe probe = new Probe(vm);
                                probe.note("faults: the write of arc " + (failing + 1) + " fails at " + steps.get(0)
                                        + (intoError ? " into ERROR" : ", refused"));
                                if (from == STOP) {
                                    probe.require(DeviceState.STOP);
                                }
                                Device.V2Result result = probe.v2(to);
                                DeviceState expected = intoError ? DeviceState.ERROR : arcFrom;
                                if (result.succeeded() || !result.path().equals(arcs.subList(0, failing))
                                        || !probe.device().state().equals(expected)) {
                                    throw probe.violation(flags + ": " + from + " -> " + to + " with arc " + (failing + 1) + " failing"
                                            + " should stop after " + arcs.subList(0, failing) + " in " + expected + ", stopped after "
                                            + result.path() + " in " + probe.device().state());
                                }
                                cases++;
                            }
                        }
                    }
                }
            }
        }
        return cases + " walks with one arc failing (refused, or into ERROR), each stopped where the arc left it";
    }

    /** Which write reaching {@code step} the failing arc's is, counting the device's writes from boot. */
    private static int occurrence(MigrationState from, List<MigrationState> arcs, int failing, TransitionStep step) {
        int count = 0;
        DeviceState at = DeviceState.RUNNING;
        List<DeviceState> writes = new ArrayList<>();
        if (from == STOP) {
            writes.add(DeviceState.STOP);
        }
        for (int i = 0; i <= failing; i++) {
            writes.add(arcs.get(i).v1());
        }
        for (DeviceState write : writes) {
            if (Device.priorityOrder(at, write).contains(step)) {
                count++;
            }
            at = write;
        }
        return count;
    }

    private static void reach(Probe probe, MigrationState state, byte[] stream) {
        switch (state) {
            case RUNNING -> {
            }
            case RESUMING -> {
                probe.require(DeviceState.RESUMING);
                probe.writeAll(stream, stream.length);
            }
            case ERROR -> {
                probe.require(DeviceState.RESUMING);
                probe.set(DeviceState.STOP);
            }
            default -> probe.require(state.v1());
        }
        if (!probe.device().state().equals(state.v1())) {
            throw probe.violation("could not reach " + state + " to start from it");
        }
    }

    private static Map<MigrationState, Set<MigrationState>> arcs(MigrationFlags flags) {
        Map<MigrationState, Set<MigrationState>> arcs = new EnumMap<>(MigrationState.class);
        for (MigrationState s : MigrationState.values()) {
            arcs.put(s, EnumSet.noneOf(MigrationState.class));
        }
        // Required of every driver.
        arc(arcs, RESUMING, STOP);
        arc(arcs, STOP, RESUMING);
        arc(arcs, STOP, STOP_COPY);
        arc(arcs, STOP_COPY, STOP);
        if (flags.p2p()) {
            arc(arcs, RUNNING, RUNNING_P2P);
            arc(arcs, RUNNING_P2P, RUNNING);
            arc(arcs, RUNNING_P2P, STOP);
            arc(arcs, STOP, RUNNING_P2P);
        } else {
            arc(arcs, RUNNING, STOP);
            arc(arcs, STOP, RUNNING);
        }
        if (flags.preCopy()) {
            arc(arcs, RUNNING, PRE_COPY);
            arc(arcs, PRE_COPY, RUNNING);
            if (flags.p2p()) {
                arc(arcs, PRE_COPY, PRE_COPY_P2P);
                arc(arcs, PRE_COPY_P2P, PRE_COPY);
                arc(arcs, PRE_COPY_P2P, RUNNING_P2P);
                arc(arcs, PRE_COPY_P2P, STOP_COPY);
                arc(arcs, RUNNING_P2P, PRE_COPY_P2P);
            } else {
                arc(arcs, PRE_COPY, STOP_COPY);
            }
        }
        return arcs;
    }

    private static void arc(Map<MigrationState, Set<MigrationState>> arcs, MigrationState from, MigrationState to) {
        arcs.get(from).add(to);
    }

    /** The one shortest admissible path, or empty when the request must fail at once (V2). */
    static Optional<List<MigrationState>> oracle(MigrationFlags flags, MigrationState from, MigrationState to) {
        if (from == ERROR || to == ERROR || !to.supportedBy(flags)) {
            return Optional.empty();
        }
        if (from == STOP_COPY && (to == PRE_COPY || to == PRE_COPY_P2P)) {
            return Optional.empty();
        }
        if (from == to) {
            return Optional.of(List.of());
        }
        boolean savingToSaving = from.isSaving() && to.isSaving();
        Map<MigrationState, Set<MigrationState>> arcs = arcs(flags);
        List<List<MigrationState>> found = new ArrayList<>();
        ArrayDeque<List<MigrationState>> queue = new ArrayDeque<>();
        queue.add(List.of(from));
        int shortest = Integer.MAX_VALUE;
        while (!queue.isEmpty()) {
            List<MigrationState> path = queue.poll();
            if (path.size() > shortest) {
                break;
            }
            MigrationState last = path.get(path.size() - 1);
            for (MigrationState next : arcs.get(last)) {
                if (path.contains(next)) {
                    continue;
                }
                List<MigrationState> longer = new ArrayList<>(path);
                longer.add(next);
                if (next == to) {
                    shortest = longer.size();
                    found.add(longer.subList(1, longer.size()));
                } else if (!next.isSaving() || savingToSaving) {
                    queue.add(longer);
                }
            }
        }
        if (found.size() != 1) {
            throw new IllegalStateException("the kit's oracle found " + found.size() + " shortest paths for " + flags + " " + from
                    + " -> " + to + ": " + found);
        }
        return Optional.of(List.copyOf(found.get(0)));
    }
}
