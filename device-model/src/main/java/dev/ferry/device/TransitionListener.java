package dev.ferry.device;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.migration.TransitionStep;

/** Observes a device's state writes: for traces, metrics and tests of the priority order. */
public interface TransitionListener {

    /**
     * One group of a write has started (SPEC §1 priority order). Called with the device's lock
     * held: record, do not call back into the device.
     */
    default void step(Device device, TransitionStep step) {
    }

    /** A state write finished; {@code startNanos} is {@link System#nanoTime()} when it began. */
    default void transitioned(Device device, DeviceState requested, TransitionResult result, long startNanos, long durationNanos) {
    }

    /**
     * A write of the data window failed its checks and moved the device from RESUMING to ERROR (W7, D8),
     * outside any state write; {@code startNanos} is {@link System#nanoTime()} when the write began.
     */
    default void windowFailed(Device device, TransitionResult.Failed failure, long startNanos, long durationNanos) {
    }

    /** The device was reset (D5) from {@code from} to RUNNING. */
    default void reset(Device device, DeviceState from, long startNanos, long durationNanos) {
    }
}
