package dev.ferry.orchestrator.vm;

import java.util.Locale;

/** A hosted VM's state as the API shows it. */
public enum VmState {
    /** vCPUs running. */
    RUNNING,
    /** vCPUs stopped, devices idle (M5). */
    PAUSED,
    /** Being migrated away from this daemon. */
    MIGRATING,
    /** Being migrated to this daemon; not usable until the migration completes. */
    INCOMING,
    /** Migrated away: a stopped shell kept for inspection until deleted. */
    MIGRATED;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
