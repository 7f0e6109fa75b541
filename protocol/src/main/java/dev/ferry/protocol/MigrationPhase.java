package dev.ferry.protocol;

import java.util.Locale;

/** The source flow's phases as PHASE frames carry them (SPEC §5: S1–S6). */
public enum MigrationPhase {
    SETUP(1), PRECOPY(2), VIOMMU_GRACE(3), P2P_GRACE(4), STOP_COPY(5), SWITCHOVER(6);

    private final int code;

    MigrationPhase(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The phase with this code, or {@code null}. */
    public static MigrationPhase of(int code) {
        for (MigrationPhase phase : values()) {
            if (phase.code == code) {
                return phase;
            }
        }
        return null;
    }
}
