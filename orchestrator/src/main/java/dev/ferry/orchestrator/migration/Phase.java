package dev.ferry.orchestrator.migration;

/**
 * A phase of a migration on this daemon: {@link SourcePhase} on the source, {@link DestinationPhase}
 * on the destination. Each role's phases form a small state machine; {@link Migration} refuses a
 * transition its role does not allow, so a flow that takes a wrong turn fails loudly, not quietly.
 */
public sealed interface Phase permits SourcePhase, DestinationPhase {
    /** The API's name of the phase. */
    String label();

    /** Completed, failed or cancelled: nothing follows. */
    boolean terminal();

    /** Whether a migration in this phase may enter {@code next}. */
    boolean canEnter(Phase next);
}
