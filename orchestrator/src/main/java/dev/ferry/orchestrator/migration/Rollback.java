package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.vm.Vm;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * F4 on the source: the VM as it was before the migration, with nothing lost. It runs only after the
 * session's channels are closed and every worker of the flow has ended, so nothing reads the VM's
 * memory or device windows any more: dirty tracking off, the throttles on the vCPUs and on the devices'
 * own work lifted, every device back to RUNNING, the vCPUs restarted if they ran.
 *
 * <p>Each device is recovered as QEMU recovers a VFIO device whose state change failed: first the recovery
 * state is written (RUNNING, through NDMA|RUNNING for a device with NDMA); a device that cannot take it (in
 * ERROR, where D4 refuses every write, or one whose recovery write fails) is reset, which D5 guarantees from any
 * state. What was done to which device is returned, for the migration's view.
 */
final class Rollback {
    private static final Logger LOG = LoggerFactory.getLogger(Rollback.class);

    private Rollback() {
    }

    static List<MigrationView.RecoveryView> run(Vm vm, List<Device> devices, boolean vcpusWereRunning) {
        vm.memory().vcpuLog().stop();
        vm.iommu().stopDirtyTracking();
        vm.workload().setThrottle(0);
        vm.setDeviceWorkThrottle(0);
        List<MigrationView.RecoveryView> recoveries = new ArrayList<>();
        for (Device device : devices) {
            if (device.state().isError()) {
                LOG.warn("rollback: {} is in ERROR; resetting it (D4, D5)", device.id());
                vm.resetDevice(device.id());
                recoveries.add(new MigrationView.RecoveryView(device.id(), "ERROR", RESET, "in ERROR every write fails (D4); reset leaves it (D5)"));
            }
        }
        // Back through the grace state: every device runs without starting DMA before any starts it,
        // so a restarting device never writes into a peer that is still stopped (F2 holds on rollback too).
        restore(vm, devices, d -> d.config().ndma() ? DeviceState.RUNNING_NDMA : DeviceState.RUNNING, recoveries);
        restore(vm, devices, d -> DeviceState.RUNNING, recoveries);
        if (vcpusWereRunning && !vm.vcpusRunning()) {
            vm.startVcpus();
        }
        return List.copyOf(recoveries);
    }

    /** The recovery state written; a device that could not take it was reset. */
    static final String RECOVERY_STATE = "recovery_state";
    static final String RESET = "reset";

    private static void restore(Vm vm, List<Device> devices, Function<Device, DeviceState> target,
                                List<MigrationView.RecoveryView> recoveries) {
        for (Device device : devices) {
            DeviceState state = target.apply(device);
            DeviceState from = device.state();
            if (from.equals(state)) {
                continue;
            }
            TransitionResult result = device.setState(state);
            if (!result.succeeded()) {
                LOG.warn("rollback: {} did not return to {} ({}); resetting it", device.id(), state, result.describe());
                vm.resetDevice(device.id());
                recoveries.add(new MigrationView.RecoveryView(device.id(), from.label(), RESET,
                        "the recovery state " + state + " failed: " + result.describe()));
            } else if (!from.equals(DeviceState.RUNNING_NDMA)) {
                recoveries.add(new MigrationView.RecoveryView(device.id(), from.label(), RECOVERY_STATE, "-> " + state));
            }
        }
    }
}
