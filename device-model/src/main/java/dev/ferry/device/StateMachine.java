package dev.ferry.device;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionFailure;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.migration.TransitionStep;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The v1 state machine (SPEC §1): the device's {@code device_state}, the checks every write passes first
 * (D1, D3, D4, D6) and the priority order in which a write applies the groups of bits it changes, stopping at
 * the first that fails (D10). It flips the engine's gates and opens and closes the data window's sessions;
 * every outcome is one of D2's three. Called with the device's lock held.
 */
final class StateMachine {
    private final String deviceId;
    private final DeviceConfig config;
    private final Engine engine;
    private final DataWindow window;
    private final StateImage image;
    private final Consumer<TransitionStep> stepListener;
    private final DeviceFaults faults;
    private final int[] faultCounts;

    // Guarded by the device's lock.
    private DeviceState state = DeviceState.RUNNING;

    StateMachine(DeviceConfig config, Engine engine, DataWindow window, StateImage image, Consumer<TransitionStep> stepListener) {
        this.deviceId = config.id();
        this.config = config;
        this.engine = engine;
        this.window = window;
        this.image = image;
        this.stepListener = stepListener;
        this.faults = config.faults();
        this.faultCounts = new int[faults.stateWrites().size()];
    }

    DeviceState state() {
        return state;
    }

    /**
     * The groups a write from {@code cur} to {@code req} applies, in the priority order (SPEC §1): each runs
     * only when its bits change. SAVE_END is D9's, between capture and the resume steps.
     */
    static List<TransitionStep> steps(DeviceState cur, DeviceState req) {
        List<TransitionStep> steps = new ArrayList<>(8);
        if (req.ndma() && !cur.ndma()) {
            steps.add(TransitionStep.NDMA_SET);
        }
        if (cur.running() && !req.running()) {
            steps.add(TransitionStep.FREEZE);
        }
        if (req.stopCopy() && !cur.stopCopy()) {
            steps.add(TransitionStep.CAPTURE);
        }
        if (cur.saving() && !req.saving()) {
            steps.add(TransitionStep.SAVE_END);
        }
        if (req.resuming() && !cur.resuming()) {
            steps.add(TransitionStep.RESUME_OPEN);
        }
        if (cur.resuming() && !req.resuming()) {
            steps.add(TransitionStep.LOAD);
        }
        if (req.running() && !cur.running()) {
            steps.add(TransitionStep.RESTART);
        }
        if (req.preCopy() && !cur.preCopy()) {
            steps.add(TransitionStep.PRE_COPY_START);
        }
        if (!req.ndma() && cur.ndma()) {
            steps.add(TransitionStep.NDMA_CLEAR);
        }
        return steps;
    }

    /** One v1 write (SPEC §1). */
    TransitionResult apply(DeviceState req) {
        DeviceState cur = state;
        if (engine.closed()) {
            return new TransitionResult.Rejected(cur, TransitionFailure.DEVICE_CLOSED, "device " + deviceId + " was removed");
        }
        if (cur.isError()) {
            return new TransitionResult.Rejected(cur, TransitionFailure.IN_ERROR, "device " + deviceId + " is in ERROR; only reset leaves it");
        }
        if (!req.isValidRequest()) {
            return new TransitionResult.Rejected(cur, TransitionFailure.INVALID_STATE,
                    "device_state " + req.bits() + " (" + req + ") is not a valid request");
        }
        if (req.ndma() && !config.ndma()) {
            return new TransitionResult.Rejected(cur, TransitionFailure.NDMA_UNSUPPORTED,
                    "device " + deviceId + " (" + config.kind() + ") does not support NDMA");
        }
        if (cur.stopCopy() && req.preCopy()) {
            return new TransitionResult.Rejected(cur, TransitionFailure.NO_RETURN_TO_PRE_COPY,
                    "device " + deviceId + " is in stop-and-copy; the save cannot go back to pre-copy");
        }
        List<TransitionStep> steps = steps(cur, req);
        TransitionStep failAt = injectedFailure(steps);
        if (failAt != null && !intoError(failAt)) {
            return new TransitionResult.Rejected(cur, TransitionFailure.INJECTED,
                    "device " + deviceId + " refused the write at its " + failAt + " step (an injected fault)");
        }
        for (TransitionStep step : steps) {
            stepListener.accept(step);
            if (step == failAt) {
                return failed(cur, TransitionFailure.INJECTED, "device " + deviceId + " failed at its " + step + " step (an injected fault)");
            }
            TransitionResult failure = run(step, cur);
            if (failure != null) {
                return failure;
            }
        }
        state = req;
        return new TransitionResult.Succeeded(cur, req);
    }

    /** Runs one group; returns the write's failure, or null to go on. */
    private TransitionResult run(TransitionStep step, DeviceState cur) {
        switch (step) {
            // 1. NDMA set: stop starting DMA and wait for DMA in flight (D11).
            case NDMA_SET -> {
                engine.stopDma();
                return quiesce(cur, "DMA still in flight after NDMA was set on " + deviceId);
            }
            // 2. !RUNNING: freeze (D12).
            case FREEZE -> {
                engine.freeze();
                return quiesce(cur, "work still in flight after " + deviceId + " was stopped");
            }
            // 3. SAVING|!RUNNING: from here the rest of the stream is fixed (W2, W4).
            case CAPTURE -> window.enterStopCopy();
            // D9: clearing SAVING ends the save session and discards the window.
            case SAVE_END -> window.discard();
            // 4. RESUMING set: the device resets itself and opens the window (D7).
            case RESUME_OPEN -> {
                window.discard();
                image.reset();
                window.openResume();
            }
            // 5. RESUMING cleared: load everything written, or go to ERROR (D8).
            case LOAD -> {
                String problem = window.finishResume();
                if (problem != null) {
                    return failed(cur, TransitionFailure.LOAD_FAILED, "device " + deviceId + " could not load its state: " + problem);
                }
            }
            // 6. RUNNING: restart.
            case RESTART -> engine.restart();
            // 7. SAVING|RUNNING: pre-copy starts with internal dirty logging (W4).
            case PRE_COPY_START -> window.startPreCopy();
            // 8. NDMA cleared.
            case NDMA_CLEAR -> engine.resumeDma();
        }
        return null;
    }

    private TransitionResult quiesce(DeviceState cur, String timeoutMessage) {
        Engine.Quiesce quiesce = engine.awaitIdle(TimeUnit.MILLISECONDS.toNanos(faults.slowQuiesceMs()));
        return switch (quiesce) {
            case IDLE -> null;
            case INTERRUPTED -> abandoned(cur);
            case TIMED_OUT -> failed(cur, TransitionFailure.QUIESCE_TIMEOUT, timeoutMessage);
        };
    }

    /** The first injected state-write fault this write fires, counting each fault's writes; null for none. */
    private TransitionStep injectedFailure(List<TransitionStep> steps) {
        TransitionStep fired = null;
        for (int i = 0; i < faultCounts.length; i++) {
            DeviceFaults.StateWriteFault fault = faults.stateWrites().get(i);
            if (steps.contains(fault.step()) && ++faultCounts[i] == fault.nth()
                    && (fired == null || steps.indexOf(fault.step()) < steps.indexOf(fired))) {
                fired = fault.step();
            }
        }
        return fired;
    }

    private boolean intoError(TransitionStep step) {
        return faults.stateWrites().stream().anyMatch(f -> f.step() == step && f.intoError());
    }

    /** D8, D13: a failure into ERROR, which behaves as NDMA, takes no MMIO and has no window. */
    TransitionResult.Failed failed(DeviceState cur, TransitionFailure failure, String message) {
        state = DeviceState.ERROR;
        engine.toError();
        window.discard();
        return new TransitionResult.Failed(cur, failure, message);
    }

    /**
     * D2 for an interrupted quiesce: only the gates of steps 1 and 2 were touched, so restoring them leaves the
     * device exactly as it was, and the write fails with the state unchanged. The interrupt stays set.
     */
    private TransitionResult abandoned(DeviceState cur) {
        engine.restore(cur.running(), cur.ndma());
        return new TransitionResult.Rejected(cur, TransitionFailure.INTERRUPTED,
                "the write to " + deviceId + " was abandoned while it waited for work in flight: the caller was interrupted");
    }

    /** D5: RUNNING, the window discarded, the device's internal state that of a new device. */
    void reset() {
        window.reset();
        image.reset();
        state = DeviceState.RUNNING;
        engine.reset();
    }
}
