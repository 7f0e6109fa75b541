package dev.ferry.protocol;

import java.util.Locale;

/** The wire code of a source phase, as PHASE frames carry it (SPEC §5: S1–S6); the daemon names the phases themselves. */
public enum PhaseCode {
    SETUP(1), PRECOPY(2), VIOMMU_GRACE(3), P2P_GRACE(4), STOP_COPY(5), SWITCHOVER(6);

    private final int code;

    PhaseCode(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The phase with this code, or {@code null}. */
    public static PhaseCode of(int code) {
        for (PhaseCode phase : values()) {
            if (phase.code == code) {
                return phase;
            }
        }
        return null;
    }
}
