package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionResult;
import java.util.List;
import java.util.function.Function;

/**
 * One step of a reference flow applied to every device of a VM (F1): each device is written its state
 * for the step, and the step is done only when every device is there. Nothing moves on to the next
 * step before that, so no device leaves a grace state while another has not reached it.
 */
final class GraceBarrier {
    private GraceBarrier() {
    }

    /**
     * Writes each device's state for the step, in order; the first failure stops the step.
     *
     * @return how long the step took, in nanoseconds
     */
    static long apply(List<Device> devices, Function<Device, DeviceState> stateFor, String step, String failureCode)
            throws MigrationFailure {
        long start = System.nanoTime();
        for (Device device : devices) {
            DeviceState target = stateFor.apply(device);
            if (device.state().equals(target)) {
                continue;
            }
            TransitionResult result = device.setState(target);
            if (!result.succeeded()) {
                throw new MigrationFailure(failureCode, "device " + device.id() + " at " + step + ": " + result.describe());
            }
        }
        return System.nanoTime() - start;
    }
}
