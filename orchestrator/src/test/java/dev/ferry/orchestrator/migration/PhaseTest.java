package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Each role's phases are a state machine (SPEC §5); a migration refuses a transition its role does not allow. */
class PhaseTest {
    @Test
    void theSourceGoesThroughS1ToS6InOrderAndMayEndFromAnyPhase() {
        List<SourcePhase> path = List.of(SourcePhase.SETUP, SourcePhase.PRECOPY, SourcePhase.VIOMMU_GRACE, SourcePhase.P2P_GRACE,
                SourcePhase.STOP_COPY, SourcePhase.SWITCHOVER, SourcePhase.COMPLETED);
        for (SourcePhase from : SourcePhase.values()) {
            List<SourcePhase> allowed = new ArrayList<>();
            for (SourcePhase to : SourcePhase.values()) {
                if (from.canEnter(to)) {
                    allowed.add(to);
                }
            }
            if (from.terminal()) {
                assertThat(allowed).as("after %s", from).isEmpty();
            } else {
                SourcePhase next = path.get(path.indexOf(from) + 1);
                List<SourcePhase> expected = new ArrayList<>(List.of(next, SourcePhase.FAILED, SourcePhase.CANCELLED));
                if (from == SourcePhase.SETUP) {
                    // A dry run completes right after its setup (F8).
                    expected.add(SourcePhase.COMPLETED);
                }
                assertThat(allowed).as("from %s", from).containsExactlyInAnyOrderElementsOf(expected);
            }
        }
        assertThat(SourcePhase.PRECOPY.canEnter(DestinationPhase.RESUMING)).isFalse();
    }

    @Test
    void theDestinationGoesThroughR1ToR4() {
        assertThat(DestinationPhase.SETUP.canEnter(DestinationPhase.RESUMING)).isTrue();
        assertThat(DestinationPhase.RESUMING.canEnter(DestinationPhase.P2P_GRACE)).isTrue();
        assertThat(DestinationPhase.P2P_GRACE.canEnter(DestinationPhase.COMPLETED)).isTrue();
        assertThat(DestinationPhase.RESUMING.canEnter(DestinationPhase.COMPLETED)).as("not before R3").isFalse();
        assertThat(DestinationPhase.SETUP.canEnter(DestinationPhase.P2P_GRACE)).isFalse();
        assertThat(DestinationPhase.COMPLETED.canEnter(DestinationPhase.FAILED)).isFalse();
        assertThat(DestinationPhase.SETUP.canEnter(SourcePhase.PRECOPY)).isFalse();
    }

    @Test
    void aMigrationRefusesATransitionItsRoleDoesNotAllow() {
        Migration source = new Migration("mig-1", Role.SOURCE, "vm1", "peer", Map.of());
        source.enter(SourcePhase.PRECOPY);
        assertThatThrownBy(() -> source.enter(SourcePhase.STOP_COPY)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("cannot go from precopy to stop_copy");
        assertThatThrownBy(() -> source.enter(DestinationPhase.RESUMING)).isInstanceOf(IllegalStateException.class);
        source.enter(SourcePhase.CANCELLED);
        assertThat(source.finished()).isTrue();
        assertThat(source.view().finishedAt()).isNotNull();
        assertThatThrownBy(() -> source.enter(SourcePhase.FAILED)).isInstanceOf(IllegalStateException.class);
    }
}
