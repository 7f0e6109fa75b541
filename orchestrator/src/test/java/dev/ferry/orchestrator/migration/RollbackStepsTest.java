package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.Device;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

/** F4's restore, on its own: from wherever a failed save left the devices, the VM as it was. */
class RollbackStepsTest {
    @Test
    void everyDeviceRunsAgainTrackingStopsTheThrottleLiftsAndTheVcpusRestart() {
        VmConfig config = new VmConfig("rb", 8L << 20, 1, InitialMemory.RANDOM, WorkloadConfig.of(1 << 20, 0, 3), P2pPolicy.AUTO,
                List.of(DeviceConfig.of("nic0", DeviceKind.NIC), DeviceConfig.of("gpu0", DeviceKind.GPU).withMemoryBytes(1L << 20),
                        DeviceConfig.of("crypto0", DeviceKind.CRYPTO), DeviceConfig.of("serial0", DeviceKind.SERIAL)));
        try (Vm vm = Vm.boot(config)) {
            vm.memory().vcpuLog().start();
            vm.iommu().startDirtyTracking();
            vm.workload().setThrottle(40);
            Device nic = vm.device("nic0").orElseThrow();
            Device gpu = vm.device("gpu0").orElseThrow();
            Device serial = vm.device("serial0").orElseThrow();
            assertThat(nic.setState(DeviceState.RUNNING_NDMA).succeeded()).isTrue();
            assertThat(gpu.setState(DeviceState.STOP_COPY).succeeded()).isTrue();
            // A device whose load failed is in ERROR (D8); only a reset leaves it (D4, D5).
            assertThat(serial.setState(DeviceState.RESUMING).succeeded()).isTrue();
            serial.writeWindow(ByteBuffer.wrap(new byte[] {1, 2, 3}));
            assertThat(serial.setState(DeviceState.RUNNING).succeeded()).isFalse();
            assertThat(serial.state().isError()).isTrue();

            Rollback.run(vm, vm.devices(), true);

            for (Device device : vm.devices()) {
                assertThat(device.state()).as("device %s", device.id()).isEqualTo(DeviceState.RUNNING);
                assertThat(device.stats().mmioWhileStopped()).isZero();
            }
            assertThat(vm.memory().vcpuLog().isLogging()).isFalse();
            assertThat(vm.iommu().dirtyTracking()).isFalse();
            assertThat(vm.workload().throttle()).isZero();
            assertThat(vm.vcpusRunning()).isTrue();
        }
    }
}
