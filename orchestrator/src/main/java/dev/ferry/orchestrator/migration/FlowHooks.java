package dev.ferry.orchestrator.migration;

import java.nio.ByteBuffer;

/**
 * Points where a flow lets an observer in. The daemon binds {@link #NONE}; a test binds its own to
 * hold a flow at a phase (and cancel, cut or kill there) or to damage a device's data before the
 * destination loads it. Nothing here changes what a flow does unless something other than the daemon
 * itself asks.
 */
public interface FlowHooks {
    /** Lets every flow through. */
    FlowHooks NONE = new FlowHooks() {
    };

    /**
     * A flow entered a phase: sources at each of theirs, destinations at {@code resuming} and at
     * {@code p2p_grace} (every device loaded, before PREPARED is sent).
     */
    default void entered(Migration migration, Phase phase) throws InterruptedException {
    }

    /** A destination received COMMIT and has not yet started R4. */
    default void committed(Migration migration) throws InterruptedException {
    }

    /** A destination is about to write a chunk of a device's migration data into the device. */
    default void deviceData(String deviceId, ByteBuffer chunk) {
    }
}
