package dev.ferry.orchestrator.api;

import dev.ferry.device.Device;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.MigrationState;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import dev.ferry.orchestrator.vm.ManagedVm;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** The JSON shapes of API.md's resources. */
public final class Views {
    private Views() {
    }

    public record WorkloadView(long dirtyBytesPerSecond, long p2pOpsPerSecond, long doorbellsPerSecond, long seed,
                               long deviceDirtyBytesPerSecond, int throttlePercent, int deviceThrottlePercent) {
    }

    public record DeviceView(String id, String kind, boolean ndma, boolean precopy, boolean pri, long memoryBytes, long reinitMs,
                             Requests.Faults faults, int slot, String deviceState, int deviceStateBits, String migrationState, long pendingBytes,
                             Map<String, Long> stats) {
    }

    public record VmView(String id, String state, long memoryBytes, int vcpus, String initialMemory, WorkloadView workload,
                         String p2p, boolean p2pActive, String migration, HoldView hold, List<DeviceView> devices) {
    }

    /**
     * Why a VM is held for an operator: its migration failed past the commit (SPEC F5), on the source
     * because the destination never confirmed ({@code switchover_unknown}), on the destination because
     * it could not start the VM ({@code destination_failed}). Resume it (after checking the other side)
     * or delete it.
     */
    public record HoldView(String reason, String migration) {
    }

    public static VmView vm(ManagedVm managed) {
        Vm vm = managed.vm();
        VmConfig config = vm.config();
        WorkloadConfig workload = config.workload();
        List<DeviceView> devices = new ArrayList<>();
        for (Device device : vm.devices()) {
            devices.add(device(device));
        }
        return new VmView(vm.id(), managed.state().label(), config.memoryBytes(), config.vcpus(), config.initialMemory().label(),
                new WorkloadView(workload.dirtyBytesPerSecond(), workload.p2pOpsPerSecond(), workload.doorbellsPerSecond(),
                        workload.seed(), workload.deviceDirtyBytesPerSecond(), vm.workload().throttle(), vm.deviceWorkThrottle()),
                config.p2p().label(), vm.p2pActive(), managed.migrationId(),
                managed.heldBy() == null ? null : new HoldView(managed.heldFor(), managed.heldBy()), devices);
    }

    public static DeviceView device(Device device) {
        DeviceState state = device.state();
        MigrationState v2 = state.toMigrationState();
        Map<String, Long> stats = device.stats().snapshot(); // a new map of its own, so the registers go in beside
        device.describeRegisters(stats);
        return new DeviceView(device.id(), device.kind().label(), device.config().ndma(), device.config().preCopy(),
                device.config().pri(), device.config().memoryBytes(), device.config().reinitMs(), FaultsJson.of(device.config().faults()),
                device.slot(), state.label(), state.bits(),
                v2 == null ? null : v2.name(), device.pendingBytes(), stats);
    }
}
