package dev.ferry.orchestrator.faults;

import dev.ferry.orchestrator.migration.FlowHooks;
import dev.ferry.orchestrator.migration.Migration;
import dev.ferry.orchestrator.migration.Phase;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A test's flow hooks, bound in place of the daemon's (see {@code TestDaemons}): holds a flow at a
 * phase so that a test can cancel, cut or kill exactly there, and damages a device's data on a
 * destination so that its load fails (D8).
 *
 * <ul>
 *   <li>{@link #holdAt}: the next flow to enter a phase stops there until released. Sources hold at
 *       the entry of each of their phases; destinations at {@code resuming} and {@code p2p_grace}.</li>
 *   <li>{@link #holdAtCommit}: a destination that received COMMIT stops before R4.</li>
 *   <li>{@link #corruptDeviceData}: the next chunk of a device's data is damaged before the device sees it.</li>
 * </ul>
 */
public final class FaultInjector implements FlowHooks {
    private static final long HOLD_LIMIT_SECONDS = 60;
    private static final String COMMIT = "commit";

    /** A held point: {@link #awaitReached} returns once a flow is there; {@link #release()} lets it go on. */
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

        private void hold(Migration migration) throws InterruptedException {
            migrationId = migration.id();
            reached.countDown();
            released.await(HOLD_LIMIT_SECONDS, TimeUnit.SECONDS);
        }
    }

    private final Map<String, Hold> holds = new ConcurrentHashMap<>();
    private final Set<String> corrupt = ConcurrentHashMap.newKeySet();

    /** Arms a hold: the next flow entering {@code phase} waits there until released (or interrupted). */
    public Hold holdAt(Phase phase) {
        Hold hold = new Hold();
        holds.put(phase.label(), hold);
        return hold;
    }

    /** Arms a hold at a destination's commit: COMMIT received, before R4. */
    public Hold holdAtCommit() {
        Hold hold = new Hold();
        holds.put(COMMIT, hold);
        return hold;
    }

    /** Arms corruption of the next chunk of data for the device with this id. */
    public void corruptDeviceData(String deviceId) {
        corrupt.add(deviceId);
    }

    @Override
    public void entered(Migration migration, Phase phase) throws InterruptedException {
        Hold hold = holds.remove(phase.label());
        if (hold != null) {
            hold.hold(migration);
        }
    }

    @Override
    public void committed(Migration migration) throws InterruptedException {
        Hold hold = holds.remove(COMMIT);
        if (hold != null) {
            hold.hold(migration);
        }
    }

    @Override
    public void deviceData(String deviceId, ByteBuffer chunk) {
        if (chunk.remaining() > 0 && corrupt.remove(deviceId)) {
            int at = chunk.position() + chunk.remaining() / 2;
            chunk.put(at, (byte) (chunk.get(at) ^ 0x5a));
        }
    }
}
