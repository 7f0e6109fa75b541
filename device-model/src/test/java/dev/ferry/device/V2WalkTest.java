package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static dev.ferry.device.migration.MigrationState.ERROR;
import static dev.ferry.device.migration.MigrationState.PRE_COPY;
import static dev.ferry.device.migration.MigrationState.PRE_COPY_P2P;
import static dev.ferry.device.migration.MigrationState.RESUMING;
import static dev.ferry.device.migration.MigrationState.RUNNING;
import static dev.ferry.device.migration.MigrationState.RUNNING_P2P;
import static dev.ferry.device.migration.MigrationState.STOP;
import static dev.ferry.device.migration.MigrationState.STOP_COPY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.MigrationFlags;
import dev.ferry.device.migration.MigrationState;
import dev.ferry.device.migration.NextStateRule;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.vm.Vm;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The v2 interface (SPEC §3): for each of the four flag sets, every (from, to) pair walks the path the
 * kernel's rule gives (V1), fails at once where it must (V2), and stops where a failing arc leaves it
 * (V3).
 *
 * <p>The oracle is independent of the production table: a breadth-first search over the arcs the
 * kernel's documentation requires of a driver with those flags, choosing the shortest path whose
 * interior touches no saving state (unless it runs from one saving state to another), and demanding
 * that this path be unique.
 */
class V2WalkTest {

    private static final List<MigrationFlags> FLAG_SETS = List.of(
            new MigrationFlags(false, false), new MigrationFlags(true, false),
            new MigrationFlags(false, true), new MigrationFlags(true, true));

    @Test
    void v1EveryPairOfEveryFlagSetWalksTheKernelPath() {
        Map<String, String> mismatches = new LinkedHashMap<>();
        for (MigrationFlags flags : FLAG_SETS) {
            DeviceConfig config = TestVms.small("nic0", DeviceKind.NIC).withNdma(flags.p2p()).withPreCopy(flags.preCopy());
            byte[] stream;
            try (Vm twin = TestVms.boot(config)) {
                stream = TestVms.saveWhole(twin.devices().get(0));
            }
            try (Vm vm = TestVms.boot(config)) {
                Device device = vm.devices().get(0);
                for (MigrationState from : MigrationState.values()) {
                    if (from != ERROR && !from.supportedBy(flags)) {
                        continue;
                    }
                    for (MigrationState to : MigrationState.values()) {
                        reach(device, from, stream);
                        Optional<List<MigrationState>> expected = oracle(flags, from, to);
                        Device.V2Result result = device.setMigrationState(to);
                        String key = flags + ": " + from + " -> " + to;
                        if (expected.isEmpty()) {
                            // V2: fails at once, state unchanged.
                            if (result.succeeded() || !result.path().isEmpty() || !device.state().equals(from.v1())) {
                                mismatches.put(key, "expected immediate failure, got " + result);
                            }
                        } else if (!result.succeeded() || !result.path().equals(expected.get())
                                || !device.state().equals(to.v1())) {
                            mismatches.put(key, "expected " + expected.get() + ", got " + result.path()
                                    + " ending in " + device.state() + " (" + result.last().describe() + ")");
                        }
                    }
                }
            }
        }
        assertThat(mismatches).isEmpty();
    }

    @Test
    void v1MultiStepPathsListedInTheKernelDocumentation() {
        MigrationFlags all = MigrationFlags.ALL;
        assertThat(NextStateRule.path(all, PRE_COPY, STOP_COPY)).contains(List.of(PRE_COPY_P2P, STOP_COPY));
        assertThat(NextStateRule.path(all, PRE_COPY, RESUMING)).contains(List.of(RUNNING, RUNNING_P2P, STOP, RESUMING));
        assertThat(NextStateRule.path(all, RESUMING, PRE_COPY)).contains(List.of(STOP, RUNNING_P2P, RUNNING, PRE_COPY));
        assertThat(NextStateRule.path(all, RUNNING, STOP_COPY)).contains(List.of(RUNNING_P2P, STOP, STOP_COPY));
        assertThat(NextStateRule.path(all, STOP_COPY, RUNNING)).contains(List.of(STOP, RUNNING_P2P, RUNNING));
        assertThat(NextStateRule.path(all, PRE_COPY_P2P, STOP)).contains(List.of(RUNNING_P2P, STOP));
        assertThat(NextStateRule.path(MigrationFlags.STOP_COPY_ONLY, RUNNING, STOP_COPY)).contains(List.of(STOP, STOP_COPY));
    }

    @Test
    void v2StopCopyNeverGoesBackToPreCopyAndErrorCannotBeRequested() throws Exception {
        try (Vm vm = TestVms.boot(TestVms.small("gpu0", DeviceKind.GPU))) {
            Device gpu = vm.devices().get(0);
            require(gpu.setState(DeviceState.STOP_COPY));
            for (MigrationState target : List.of(PRE_COPY, PRE_COPY_P2P, ERROR)) {
                Device.V2Result result = gpu.setMigrationState(target);
                assertThat(result.succeeded()).isFalse();
                assertThat(result.path()).isEmpty();
                assertThat(gpu.state()).isEqualTo(DeviceState.STOP_COPY);
            }
            assertThatThrownBy(() -> MigrationState.ofValue(8)).isInstanceOf(IllegalArgumentException.class);
        }
        try (Vm vm = TestVms.boot(TestVms.small("crypto0", DeviceKind.CRYPTO))) {
            Device crypto = vm.devices().get(0);
            Device.V2Result result = crypto.setMigrationState(RUNNING_P2P);
            assertThat(result.succeeded()).as("a device without NDMA lacks RUNNING_P2P").isFalse();
            assertThat(crypto.state()).isEqualTo(DeviceState.RUNNING);
        }
    }

    @Test
    void v2StateWithoutV2TwinCannotStartAWalk() {
        try (Vm vm = TestVms.boot(TestVms.small("nic0", DeviceKind.NIC))) {
            Device nic = vm.devices().get(0);
            require(nic.setState(DeviceState.of(8)));
            Device.V2Result result = nic.setMigrationState(RUNNING);
            assertThat(result.succeeded()).isFalse();
            assertThat(nic.state()).isEqualTo(DeviceState.of(8));
        }
    }

    @Test
    void v3AFailingArcLeavesTheDeviceWhereItStopped() {
        try (Vm vm = TestVms.boot(TestVms.small("nic0", DeviceKind.NIC))) {
            Device nic = vm.devices().get(0);
            require(nic.setState(DeviceState.RESUMING));
            nic.writeWindow(ByteBuffer.wrap(new byte[] {1, 2, 3}));
            Device.V2Result result = nic.setMigrationState(RUNNING);
            assertThat(result.succeeded()).isFalse();
            assertThat(result.path()).as("RESUMING -> STOP failed: nothing passed").isEmpty();
            assertThat(result.last()).isInstanceOf(TransitionResult.Failed.class);
            assertThat(nic.state()).isEqualTo(DeviceState.ERROR);
        }
    }

    // ---- the oracle --------------------------------------------------------------------------

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

    /** All shortest admissible paths; the expected one if there is exactly one. */
    private static Optional<List<MigrationState>> oracle(MigrationFlags flags, MigrationState from, MigrationState to) {
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
            throw new AssertionError("oracle: " + found.size() + " shortest paths for " + flags + " " + from + " -> " + to + ": " + found);
        }
        return Optional.of(List.copyOf(found.get(0)));
    }

    private static void reach(Device device, MigrationState state, byte[] stream) {
        device.reset();
        switch (state) {
            case RUNNING -> {
            }
            case RESUMING -> {
                require(device.setState(DeviceState.RESUMING));
                device.writeWindow(ByteBuffer.wrap(stream));
            }
            case ERROR -> {
                require(device.setState(DeviceState.RESUMING));
                assertThat(device.setState(DeviceState.STOP).succeeded()).isFalse();
            }
            default -> require(device.setState(state.v1()));
        }
        assertThat(device.state()).isEqualTo(state.v1());
    }
}
