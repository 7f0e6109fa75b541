package dev.ferry.orchestrator.vm;

import dev.ferry.device.vm.Vm;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A VM as the daemon hosts it: the device model's {@link Vm} plus the state the API shows. Operations
 * that change the VM take {@link #lock()}; a migration marks the VM MIGRATING (or INCOMING) so that
 * API operations refuse it without waiting for the migration.
 */
public final class ManagedVm {
    private final Vm vm;
    private final ReentrantLock lock = new ReentrantLock();
    private volatile VmState state;
    private volatile String migrationId;
    private volatile String heldBy;
    private volatile String heldFor;

    ManagedVm(Vm vm, VmState state) {
        this.vm = vm;
        this.state = state;
    }

    public String id() {
        return vm.id();
    }

    public Vm vm() {
        return vm;
    }

    public VmState state() {
        return state;
    }

    public ReentrantLock lock() {
        return lock;
    }

    /** The migration that has the VM now, or {@code null}. */
    public String migrationId() {
        return migrationId;
    }

    public void setState(VmState state) {
        this.state = state;
    }

    /** Hands the VM to a migration; the caller holds the lock. */
    public void beginMigration(String id, VmState migratingState) {
        migrationId = id;
        state = migratingState;
    }

    /**
     * The migration that left the VM held after a switchover whose outcome is unknown (F5), or
     * {@code null}. A held VM is paused with its devices stopped; it refuses a new migration until an
     * operator resumes it or deletes it.
     */
    public String heldBy() {
        return heldBy;
    }

    /** Why the VM is held ({@code switchover_unknown}, {@code destination_failed}), or {@code null}. */
    public String heldFor() {
        return heldFor;
    }

    /**
     * Takes the VM back from its migration {@code migration}, which failed past its commit for
     * {@code reason}, and holds it, paused, for an operator (F5).
     */
    public void hold(String migration, String reason) {
        lock.lock();
        try {
            migrationId = null;
            heldBy = migration;
            heldFor = reason;
            state = VmState.PAUSED;
        } finally {
            lock.unlock();
        }
    }

    /** An operator resumed the held VM; the caller holds the lock. */
    void release() {
        heldBy = null;
        heldFor = null;
    }

    /** Takes the VM back from its migration, in {@code after}. */
    public void endMigration(VmState after) {
        lock.lock();
        try {
            migrationId = null;
            state = after;
        } finally {
            lock.unlock();
        }
    }
}
