package dev.ferry.orchestrator.migration;

import java.util.Locale;

/**
 * The destination's phases (SPEC §5): setup (R1, the description checked and the empty VM built);
 * resuming (R2, every device RESUMING, pages and device data arriving); p2p_grace (R3, every device
 * loaded and in its grace state, waiting for the commit); then completed (R4 ran) or failed or
 * cancelled.
 */
public enum DestinationPhase implements Phase {
    SETUP, RESUMING, P2P_GRACE, COMPLETED, FAILED, CANCELLED;

    @Override
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    @Override
    public boolean terminal() {
        return this == COMPLETED || this == FAILED || this == CANCELLED;
    }

    @Override
    public boolean canEnter(Phase next) {
        if (!(next instanceof DestinationPhase to) || terminal()) {
            return false;
        }
        return switch (to) {
            case FAILED, CANCELLED -> true;
            // A dry run completes after the compatibility check (F8), in setup.
            case COMPLETED -> this == P2P_GRACE || this == SETUP;
            default -> to.ordinal() == ordinal() + 1;
        };
    }
}
