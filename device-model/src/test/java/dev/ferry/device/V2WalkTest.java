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
 * The v2 interface (SPEC §3) in the cases the kernel's documentation spells out. Every (from, to) pair of
 * every flag set against an independent oracle is the conformance kit's V1–V3 ({@code ConformanceTest}).
 */
class V2WalkTest {

    private static final List<MigrationFlags> FLAG_SETS = List.of(
            new MigrationFlags(false, false), new MigrationFlags(true, false),
            new MigrationFlags(false, true), new MigrationFlags(true, true));

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
}
