package dev.ferry.orchestrator.migration;

import java.util.Locale;

/**
 * A migration's phases as the API names them. Source: setup, precopy (S1, S2), viommu_grace (S3),
 * p2p_grace (S4), stop_copy (S5), switchover (S6). Destination: setup (R1), resuming (R2),
 * p2p_grace (R3). Both end in completed, failed or cancelled.
 */
public enum Phase {
    SETUP, PRECOPY, VIOMMU_GRACE, P2P_GRACE, STOP_COPY, SWITCHOVER, RESUMING, COMPLETED, FAILED, CANCELLED;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    public boolean terminal() {
        return this == COMPLETED || this == FAILED || this == CANCELLED;
    }
}
