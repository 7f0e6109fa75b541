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
     * How long a step took.
     *
     * @param totalNanos   the whole step
     * @param typicalNanos the median of its devices' state changes, times the number of devices: what the
     *                     step costs without the one device that took unusually long (a save session
     *                     starting, say)
     * @param eachNanos    each device's state change, in the devices' order (0 for one already there)
     */
    record Timing(long totalNanos, long typicalNanos, long[] eachNanos) {
        /**
         * The typical cost, within the step's time less what its thread {@code waited} for a core
         * ({@link RunQueueWait}). The S2 step is timed once and stands for all four barriers of the
         * switchover in the estimate (F3), so a host loaded for that moment would hold the estimate above
         * the limit for the whole migration: with a load of six on two cores, one S2 step at about 22 ms
         * a device made a fixed cost of 353 ms, and a paused VM with nothing left to send never converged.
         */
        long typicalWithout(long waitedNanos) {
            return Math.min(typicalNanos, Math.max(0, totalNanos - Math.max(0, waitedNanos)));
        }
    }

    /**
     * Tells the migration's event stream the step's intent (every device's target), then writes each
     * device's state for the step, in order; the first failure stops the step.
     */
    static Timing apply(Migration migration, List<Device> devices, Function<Device, DeviceState> stateFor, String step,
                        String failureCode) throws MigrationFailure {
        migration.barrier(step, devices, stateFor);
        return apply(devices, stateFor, step, failureCode);
    }

    /** Writes each device's state for the step, in order; the first failure stops the step. */
    static Timing apply(List<Device> devices, Function<Device, DeviceState> stateFor, String step, String failureCode)
            throws MigrationFailure {
        long start = System.nanoTime();
        long[] each = new long[devices.size()];
        long[] changes = new long[devices.size()];
        int changed = 0;
        for (int i = 0; i < devices.size(); i++) {
            Device device = devices.get(i);
            DeviceState target = stateFor.apply(device);
            if (device.state().equals(target)) {
                continue;
            }
            long before = System.nanoTime();
            TransitionResult result = device.setState(target);
            each[i] = System.nanoTime() - before;
            changes[changed++] = each[i];
            if (!result.succeeded()) {
                throw new MigrationFailure(failureCode, "device " + device.id() + " at " + step + ": " + result.describe());
            }
        }
        long total = System.nanoTime() - start;
        if (changed == 0) {
            return new Timing(total, 0, each);
        }
        long[] sorted = java.util.Arrays.copyOf(changes, changed);
        java.util.Arrays.sort(sorted);
        return new Timing(total, Math.min(total, sorted[changed / 2] * changed), each);
    }
}
