package dev.ferry.device.migration;

/**
 * The outcome of one state write (D2): exactly one of success in the requested state, failure with
 * the state unchanged, or failure into ERROR.
 */
public sealed interface TransitionResult {

    DeviceState from();

    /** The state the device is in after the write. */
    DeviceState state();

    default boolean succeeded() {
        return this instanceof Succeeded;
    }

    /** A short human sentence for logs and API errors. */
    String describe();

    /** Success: the device is now in the requested state. */
    record Succeeded(DeviceState from, DeviceState state) implements TransitionResult {
        @Override
        public String describe() {
            return from + " -> " + state;
        }
    }

    /** Failure with the previous state kept. */
    record Rejected(DeviceState from, TransitionFailure failure, String message) implements TransitionResult {
        @Override
        public DeviceState state() {
            return from;
        }

        @Override
        public String describe() {
            return message + " (" + failure.rule() + "; state unchanged: " + from + ")";
        }
    }

    /** Failure into ERROR. */
    record Failed(DeviceState from, TransitionFailure failure, String message) implements TransitionResult {
        @Override
        public DeviceState state() {
            return DeviceState.ERROR;
        }

        @Override
        public String describe() {
            return message + " (" + failure.rule() + "; device now in ERROR)";
        }
    }
}
