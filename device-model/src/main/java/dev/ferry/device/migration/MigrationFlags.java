package dev.ferry.device.migration;

/**
 * A device's v2 migration flags: STOP_COPY always; P2P when it supports NDMA; PRE_COPY when it has
 * internal dirty logging (SPEC §3).
 */
public record MigrationFlags(boolean p2p, boolean preCopy) {
    public static final MigrationFlags STOP_COPY_ONLY = new MigrationFlags(false, false);
    public static final MigrationFlags ALL = new MigrationFlags(true, true);

    public boolean stopCopy() {
        return true;
    }

    @Override
    public String toString() {
        return "STOP_COPY" + (p2p ? "|P2P" : "") + (preCopy ? "|PRE_COPY" : "");
    }
}
