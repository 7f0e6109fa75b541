package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.cli.ApiClient;
import dev.ferry.orchestrator.faults.FaultInjector;
import dev.ferry.orchestrator.migration.SourcePhase;
import dev.ferry.orchestrator.transport.MigrationTransport;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * F4 and F5: before the commit every failure or cancel rolls the source back with nothing lost and
 * the destination discards its copy; after it, cancel is too late and a lost destination leaves the
 * source VM stopped ({@code switchover_unknown}).
 */
class RollbackTest {
    @AutoClose
    private final TestDaemons daemons = TestDaemons.started();

    private JsonNode pausedVm(String id) throws Exception {
        return daemons.pausedVm(id);
    }

    private void assertRolledBack(String vm, JsonNode digest, String state) throws Exception {
        daemons.assertRolledBack(vm, digest, state);
    }

    @ParameterizedTest
    @EnumSource(value = SourcePhase.class, names = {"SETUP", "PRECOPY", "VIOMMU_GRACE", "P2P_GRACE", "STOP_COPY", "SWITCHOVER"})
    void cancelInEverySourcePhaseRollsBackWithTheDigestUnchanged(SourcePhase phase) throws Exception {
        JsonNode digest = pausedVm("vm1");
        FaultInjector.Hold hold = daemons.sourceFaults().holdAt(phase);
        String id = daemons.migrate("vm1", Map.of("channels", 2)).path("id").asText();
        assertThat(hold.awaitReached(30, TimeUnit.SECONDS)).isTrue();
        assertThat(daemons.sourceApi.get("/v1/migrations/" + id).path("phase").asText()).isEqualTo(phase.label());

        JsonNode cancelled = daemons.sourceApi.delete("/v1/migrations/" + id);
        assertThat(cancelled.path("id").asText()).isEqualTo(id);
        hold.release();

        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("cancelled");
        assertThat(end.path("error").path("code").asText()).isEqualTo("cancelled");
        assertRolledBack("vm1", digest, "paused");
    }

    @Test
    void cancelOfARunningVmRestartsItsVcpus() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("live", true, 4L << 20, 100, TestDaemons.p2pDevices()));
        FaultInjector.Hold hold = daemons.sourceFaults().holdAt(SourcePhase.STOP_COPY);
        String id = daemons.migrate("live", Map.of()).path("id").asText();
        assertThat(hold.awaitReached(30, TimeUnit.SECONDS)).isTrue();
        daemons.sourceApi.delete("/v1/migrations/" + id);
        hold.release();
        assertThat(daemons.awaitEnd(id).path("phase").asText()).isEqualTo("cancelled");
        assertRolledBack("live", null, "running");
        long before = MigrationEndToEndTest.stat(daemons.sourceApi.get("/v1/vms/live"), "gpu0", "operations");
        await().atMost(Duration.ofSeconds(10)).until(() ->
                MigrationEndToEndTest.stat(daemons.sourceApi.get("/v1/vms/live"), "gpu0", "operations") > before);
    }

    /**
     * F3: a migration that cannot converge gives up with {@code timeout} after {@code maxIterations}
     * passes, and rolls back; the auto-converge throttle goes with it. At the 32 MiB/s cap, what the
     * workload dirties during one pass takes tens of milliseconds to send: far above the 1 ms limit.
     */
    @Test
    void f3AMigrationThatCannotConvergeGivesUpAfterMaxIterationsAndRollsBack() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("live", true, 8L << 20, 50, TestDaemons.p2pDevices()));
        String id = daemons.migrate("live", Map.of("downtimeLimitMs", 1, "maxIterations", 3,
                "maxBandwidthBytesPerSecond", 32L << 20)).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("failed");
        assertThat(end.path("error").path("code").asText()).isEqualTo("timeout");
        assertThat(end.path("error").path("message").asText()).contains("did not converge in 3 passes (maxIterations 3)");
        assertThat(end.path("iterations").asLong()).isEqualTo(3);
        assertRolledBack("live", null, "running");
        assertThat(daemons.sourceApi.get("/v1/vms/live").path("workload").path("throttlePercent").asLong())
                .as("the throttle is lifted").isZero();
    }

    /**
     * F3: past {@code timeoutMs} the migration gives up with {@code timeout} and rolls back, in whatever
     * wait it is (here held at its start).
     */
    @Test
    void f3PastTimeoutMsTheMigrationGivesUpAndRollsBack() throws Exception {
        JsonNode digest = pausedVm("vm1");
        FaultInjector.Hold hold = daemons.sourceFaults().holdAt(SourcePhase.SETUP);
        String id = daemons.migrate("vm1", Map.of("timeoutMs", 300)).path("id").asText();
        assertThat(hold.awaitReached(30, TimeUnit.SECONDS)).isTrue();
        JsonNode end = daemons.awaitEnd(id);
        hold.release();
        assertThat(end.path("error").path("code").asText()).as(end.toString()).isEqualTo("timeout");
        assertThat(end.path("error").path("message").asText()).contains("timeoutMs 300 passed in setup");
        assertThat(end.path("totalTimeMs").asLong()).isGreaterThanOrEqualTo(300).isLessThan(1_300);
        assertRolledBack("vm1", digest, "paused");
    }

    @Test
    void cancelAfterTheCommitIsTooLate() throws Exception {
        pausedVm("vm1");
        FaultInjector.Hold committed = daemons.destinationFaults().holdAtCommit();
        String id = daemons.migrate("vm1", Map.of()).path("id").asText();
        assertThat(committed.awaitReached(30, TimeUnit.SECONDS)).isTrue();
        assertThatThrownBy(() -> daemons.sourceApi.delete("/v1/migrations/" + id))
                .isInstanceOfSatisfying(ApiClient.ApiError.class, e -> {
                    assertThat(e.status()).isEqualTo(409);
                    assertThat(e.code()).isEqualTo("too_late");
                });
        committed.release();
        assertThat(daemons.awaitEnd(id).path("phase").asText()).isEqualTo("completed");
        assertThatThrownBy(() -> daemons.sourceApi.delete("/v1/migrations/" + id))
                .isInstanceOfSatisfying(ApiClient.ApiError.class, e -> assertThat(e.code()).isEqualTo("migration_finished"));
    }

    @Test
    void aDestinationDeviceThatFailsToLoadRollsTheSourceBack() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("vm1", true, 4L << 20, 50, TestDaemons.p2pDevices()));
        daemons.destinationFaults().corruptDeviceData("gpu0");
        String id = daemons.migrate("vm1", Map.of()).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).isEqualTo("failed");
        assertThat(end.path("error").path("code").asText()).isEqualTo("device_load_failed");
        assertThat(end.path("error").path("message").asText()).contains("gpu0");
        assertRolledBack("vm1", null, "running");
        JsonNode destinationSide = daemons.awaitDestinationEnd(id);
        assertThat(destinationSide.path("error").path("code").asText()).isEqualTo("device_load_failed");
    }

    /**
     * The destination killed mid-stream, and more: in every source phase before the switchover, the
     * destination's migration listener and every connection to it go away (F4).
     */
    @ParameterizedTest
    @EnumSource(value = SourcePhase.class, names = {"SETUP", "PRECOPY", "VIOMMU_GRACE", "P2P_GRACE", "STOP_COPY"})
    void aDestinationCutOffInEverySourcePhaseRollsTheSourceBack(SourcePhase phase) throws Exception {
        JsonNode digest = pausedVm("vm1");
        JsonNode end = cutOffAt(phase);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("failed");
        assertThat(end.path("error").path("code").asText())
                .isIn("connection_failed", "connection_lost", "destination_failed", "peer_failed");
        assertRolledBack("vm1", digest, "paused");
    }

    /**
     * Cut off as the switchover begins, the source either learns of it before it sends COMMIT, or its
     * COMMIT cannot be written, and rolls back (F4); or COMMIT went into the socket of a peer that was
     * already gone, which the source cannot tell from a peer that took it and died, and the VM stays
     * stopped for an operator (F5). Never does it run on both sides, or restart after a COMMIT left.
     */
    @Test
    void aDestinationCutOffAtTheSwitchoverRollsBackOrStaysStopped() throws Exception {
        JsonNode digest = pausedVm("vm1");
        JsonNode end = cutOffAt(SourcePhase.SWITCHOVER);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("failed");
        if (end.path("error").path("code").asText().equals("switchover_unknown")) {
            JsonNode view = daemons.sourceApi.get("/v1/vms/vm1");
            assertThat(view.path("state").asText()).isEqualTo("paused");
            for (JsonNode device : view.path("devices")) {
                assertThat(device.path("deviceState").asText()).as("device %s", device.path("id")).isNotEqualTo("RUNNING");
            }
        } else {
            assertThat(end.path("error").path("code").asText()).isIn("connection_lost", "destination_failed", "peer_failed");
            assertRolledBack("vm1", digest, "paused");
        }
        // The destination lost its connections before any COMMIT could arrive: it keeps nothing.
        await().atMost(Duration.ofSeconds(10)).until(() -> daemons.destinationApi.get("/v1/vms").path("vms").isEmpty());
    }

    /** Holds the source at {@code phase}, takes the destination's migration listener and connections away, lets go. */
    private JsonNode cutOffAt(SourcePhase phase) throws Exception {
        FaultInjector.Hold hold = daemons.sourceFaults().holdAt(phase);
        String id = daemons.migrate("vm1", Map.of("channels", 2)).path("id").asText();
        assertThat(hold.awaitReached(30, TimeUnit.SECONDS)).isTrue();
        daemons.destination.get(MigrationTransport.class).stop();
        hold.release();
        return daemons.awaitEnd(id);
    }

    /** F5: cut off after the commit, the source cannot know; its VM stays paused and stopped for an operator. */
    @Test
    void aDestinationCutOffAfterTheCommitLeavesTheSourceVmStopped() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("live", true, 4L << 20, 50, TestDaemons.p2pDevices()));
        FaultInjector.Hold committed = daemons.destinationFaults().holdAtCommit();
        String id = daemons.migrate("live", Map.of()).path("id").asText();
        assertThat(committed.awaitReached(30, TimeUnit.SECONDS)).isTrue();
        daemons.destination.get(MigrationTransport.class).stop();
        JsonNode end;
        try {
            end = daemons.awaitEnd(id);
        } finally {
            committed.release();
        }
        assertThat(end.path("phase").asText()).isEqualTo("failed");
        assertThat(end.path("error").path("code").asText()).isEqualTo("switchover_unknown");
        JsonNode view = daemons.sourceApi.get("/v1/vms/live");
        assertThat(view.path("state").asText()).as("the vCPUs were running; they do not restart").isEqualTo("paused");
        for (JsonNode device : view.path("devices")) {
            assertThat(device.path("deviceState").asText()).as("device %s", device.path("id")).isNotEqualTo("RUNNING");
        }
    }

    @Test
    void sourceShutdownCancelsAndRollsBackTheMigration() throws Exception {
        pausedVm("vm1");
        FaultInjector.Hold hold = daemons.sourceFaults().holdAt(SourcePhase.PRECOPY);
        String id = daemons.migrate("vm1", Map.of()).path("id").asText();
        assertThat(hold.awaitReached(30, TimeUnit.SECONDS)).isTrue();
        dev.ferry.orchestrator.migration.MigrationManager migrations =
                daemons.source.get(dev.ferry.orchestrator.migration.MigrationManager.class);
        CompletableFuture<Void> stopping = CompletableFuture.runAsync(daemons.source::stop);
        await().atMost(Duration.ofSeconds(10)).until(() -> migrations.get(id).phase() != SourcePhase.PRECOPY
                || daemons.destinationApi.get("/v1/migrations/" + id).path("phase").asText().equals("failed"));
        hold.release();
        stopping.get(60, TimeUnit.SECONDS);
        assertThat(migrations.get(id).phase()).isEqualTo(SourcePhase.CANCELLED);
        JsonNode destinationSide = daemons.awaitDestinationEnd(id);
        assertThat(destinationSide.path("phase").asText()).isIn("failed", "cancelled");
        assertThat(daemons.destinationApi.get("/v1/vms").path("vms")).isEmpty();
    }
}
