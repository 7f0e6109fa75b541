package dev.ferry.orchestrator.migration;

import java.nio.ByteBuffer;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Deliberate faults, for testing what the flows do when things go wrong at a given moment. Nothing is
 * armed unless something asks; an unarmed injector costs a map lookup per phase.
 *
 * <ul>
 *   <li>{@link #holdAt}: the next flow to enter a phase stops there until released, so that a test
 *       can cancel, cut the connection, or kill a peer in exactly that phase. Sources hold at the
 *       entry of each of their phases; destinations at {@code resuming}, at {@code p2p_grace} (loaded,
 *       before PREPARED) and at {@code switchover} (COMMIT received, before R4).</li>
 *   <li>{@link #corruptDeviceData}: on a destination, the next chunk of a device's migration data is
 *       damaged before the device sees it, so its load fails (D8).</li>
 * </ul>
 */
public final class FaultInjector {
    private static final long HOLD_LIMIT_SECONDS = 60;

    /** A held phase: {@link #reached()} counts down when a flow arrives; {@link #release()} lets it go on. */
    public static final class Hold {
        private final CountDownLatch reached = new CountDownLatch(1);
        private final CountDownLatch released = new CountDownLatch(1);
        private volatile String migrationId;

        /** Waits until a flow is held here. */
        public boolean awaitReached(long timeout, TimeUnit unit) throws InterruptedException {
            return reached.await(timeout, unit);
        }

        public String migrationId() {
            return migrationId;
        }

        public void release() {
            released.countDown();
        }
    }

    private final Map<Phase, Hold> holds = new ConcurrentHashMap<>();
    private final Set<String> corrupt = ConcurrentHashMap.newKeySet();

    /** Arms a hold: the next flow entering {@code phase} waits there until released. */
    public Hold holdAt(Phase phase) {
        Hold hold = new Hold();
        holds.put(phase, hold);
        return hold;
    }

    /** Arms corruption of the next chunk of data for the device with this id. */
    public void corruptDeviceData(String deviceId) {
        corrupt.add(deviceId);
    }

    /** Called by the flows as they enter a phase. */
    void reached(Migration migration, Phase phase) throws InterruptedException {
        Hold hold = holds.remove(phase);
        if (hold == null) {
            return;
        }
        hold.migrationId = migration.id();
        hold.reached.countDown();
        hold.released.await(HOLD_LIMIT_SECONDS, TimeUnit.SECONDS);
    }

    /** Called by the destination before a chunk of device data is written to the device. */
    void deviceData(String deviceId, ByteBuffer chunk) {
        if (chunk.remaining() > 0 && corrupt.remove(deviceId)) {
            int at = chunk.position() + chunk.remaining() / 2;
            chunk.put(at, (byte) (chunk.get(at) ^ 0x5a));
        }
    }
}
