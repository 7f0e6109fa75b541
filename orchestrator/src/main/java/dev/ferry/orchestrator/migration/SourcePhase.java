package dev.ferry.orchestrator.migration;

import dev.ferry.protocol.PhaseCode;
import java.util.Locale;

/**
 * The source's phases (SPEC §5): setup; precopy (S1, then S2 iterations); viommu_grace (S3);
 * p2p_grace (S4, downtime begins); stop_copy (S5); switchover (S6). Each goes only to the next, or
 * ends: completed only after the switchover, failed or cancelled from any phase (before the commit
 * that means a rollback, F4; after it, F5). A dry run completes right after setup.
 */
public enum SourcePhase implements Phase {
    SETUP(PhaseCode.SETUP),
    PRECOPY(PhaseCode.PRECOPY),
    VIOMMU_GRACE(PhaseCode.VIOMMU_GRACE),
    P2P_GRACE(PhaseCode.P2P_GRACE),
    STOP_COPY(PhaseCode.STOP_COPY),
    SWITCHOVER(PhaseCode.SWITCHOVER),
    COMPLETED(null),
    FAILED(null),
    CANCELLED(null);

    private final PhaseCode wire;

    SourcePhase(PhaseCode wire) {
        this.wire = wire;
    }

    @Override
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    @Override
    public boolean terminal() {
        return wire == null;
    }

    /** The code the PHASE frame carries to the destination; only for phases before the end. */
    public PhaseCode wireCode() {
        if (wire == null) {
            throw new IllegalStateException(this + " is not sent to the destination");
        }
        return wire;
    }

    @Override
    public boolean canEnter(Phase next) {
        if (!(next instanceof SourcePhase to) || terminal()) {
            return false;
        }
        return switch (to) {
            case FAILED, CANCELLED -> true;
            // A dry run ends after its setup: the handshake and the compatibility check (F8).
            case COMPLETED -> this == SWITCHOVER || this == SETUP;
            default -> to.ordinal() == ordinal() + 1;
        };
    }
}
