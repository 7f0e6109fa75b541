package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.vm.Vm;
import java.util.List;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * F4 on the source: the VM as it was before the migration, with nothing lost. It runs only after the
 * session's channels are closed and every worker of the flow has ended, so nothing reads the VM's
 * memory or device windows any more: dirty tracking off, the throttles on the vCPUs and on the devices'
 * own work lifted, a device
 * reset only if it is in ERROR, every device back to RUNNING, the vCPUs restarted if they ran.
 */
final class Rollback {
    private static final Logger LOG = LoggerFactory.getLogger(Rollback.class);

    private Rollback() {
    }

    static void run(Vm vm, List<Device> devices, boolean vcpusWereRunning) {
        vm.memory().vcpuLog().stop();
        vm.iommu().stopDirtyTracking();
        vm.workload().setThrottle(0);
        vm.setDeviceWorkThrottle(0);
        for (Device device : devices) {
            if (device.state().isError()) {
                vm.resetDevice(device.id());
            }
        }
        // Back through the grace state: every device runs without starting DMA before any starts it,
        // so a restarting device never writes into a peer that is still stopped (F2 holds on rollback too).
        restore(vm, devices, d -> d.config().ndma() ? DeviceState.RUNNING_NDMA : DeviceState.RUNNING);
        restore(vm, devices, d -> DeviceState.RUNNING);
        if (vcpusWereRunning && !vm.vcpusRunning()) {
            vm.startVcpus();
        }
    }

    private static void restore(Vm vm, List<Device> devices, Function<Device, DeviceState> target) {
        for (Device device : devices) {
            DeviceState state = target.apply(device);
            if (device.state().equals(state)) {
                continue;
            }
            TransitionResult result = device.setState(state);
            if (!result.succeeded()) {
                LOG.warn("rollback: {} did not return to {} ({}); resetting it", device.id(), state, result.describe());
                vm.resetDevice(device.id());
            }
        }
    }
}
