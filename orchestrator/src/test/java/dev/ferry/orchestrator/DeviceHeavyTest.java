package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Device-heavy VMs between two daemons: device data beside the pages on every data channel (F10),
 * devices that keep writing their own memory, a device that re-initialises during pre-copy (W8, F7),
 * compatibility refused before anything moves (F8), dry runs, and the downtime explained (F6).
 */
class DeviceHeavyTest {
    private TestDaemons daemons;

    @AfterEach
    void stop() {
        if (daemons != null) {
            daemons.close();
        }
    }

    private static Map<String, Object> gpuVm(String id, boolean running, long deviceDirty, Map<String, Object> gpu) {
        Map<String, Object> gpuDevice = new java.util.HashMap<>(Map.of("id", "gpu0", "kind", "gpu", "memoryBytes", 16L << 20));
        gpuDevice.putAll(gpu);
        return Map.of("id", id, "memoryBytes", 16L << 20, "vcpus", 1, "initialMemory", "random", "running", running,
                "workload", Map.of("dirtyBytesPerSecond", 1L << 20, "deviceDirtyBytesPerSecond", deviceDirty, "seed", 3),
                "devices", List.of(gpuDevice, Map.of("id", "nic0", "kind", "nic"), Map.of("id", "serial0", "kind", "serial")));
    }

    /**
     * F6: the downtime's steps add up to it; every device's part is shown on both sides (stop-and-copy
     * bytes beside its prediction, quiesce and save on the source, load and resume on the destination)
     * and counted by kind in the metrics. F10: with two channels the device data went beside the pages.
     */
    @Test
    void theDowntimeIsExplainedStepByStepAndDeviceByDevice() throws Exception {
        daemons = new TestDaemons();
        daemons.sourceApi.post("/v1/vms", gpuVm("vm1", true, 4L << 20, Map.of()));
        String id = daemons.migrate("vm1", Map.of("channels", 2)).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");

        double steps = 0;
        List<String> names = new java.util.ArrayList<>();
        for (JsonNode step : end.path("downtimeSteps")) {
            steps += step.path("durationMs").asDouble();
            names.add(step.path("step").asText());
        }
        assertThat(names).containsExactly("vcpus_stop", "devices_stop", "final_transfer", "prepare", "switchover");
        assertThat(steps).as("the steps add up to the downtime").isBetween(end.path("downtimeMs").asDouble(),
                end.path("downtimeMs").asDouble() + 1);
        assertThat(end.path("downtimeLimitMet").asBoolean()).isEqualTo(end.path("downtimeMs").asLong() <= 300);
        for (JsonNode device : end.path("devices")) {
            for (String field : List.of("stopCopyBytes", "predictedStopCopyBytes", "quiesceMs", "saveMs", "loadMs", "resumeMs")) {
                assertThat(device.path(field).isNumber()).as("%s of %s", field, device.path("id")).isTrue();
            }
            // W9: the prediction, taken as stop-and-copy began, is what it streamed (nothing changed in between).
            assertThat(device.path("stopCopyBytes").asLong()).as("%s", device.path("id"))
                    .isEqualTo(device.path("predictedStopCopyBytes").asLong());
        }
        JsonNode destination = daemons.awaitDestinationEnd(id);
        for (JsonNode device : destination.path("devices")) {
            assertThat(device.path("loadMs").isNumber()).isTrue();
            assertThat(device.path("resumeMs").isNumber()).isTrue();
        }
        String metrics = metrics(daemons.source.http());
        assertThat(metrics).contains("ferry_device_downtime_seconds_count{kind=\"gpu\",step=\"quiesce\"} 1")
                .contains("ferry_migration_downtime_step_seconds_count{step=\"final_transfer\"} 1");
        assertThat(metrics).doesNotContain("gpu0");

        // The same in the trace: the downtime's steps on a track of their own, adding up to it, and each
        // device's stop-and-copy data on its track, with its bytes beside the prediction.
        JsonNode trace = daemons.sourceApi.get("/v1/migrations/" + id + "/trace");
        double traced = 0;
        List<String> devicesWithData = new java.util.ArrayList<>();
        for (JsonNode span : trace.path("spans")) {
            if (span.path("track").asText().equals("downtime")) {
                traced += span.path("durationMicros").asLong() / 1000.0;
            } else {
                assertThat(span.path("name").asText()).isEqualTo("stop-and-copy data");
                assertThat(span.path("args").path("stopCopyBytes").asLong())
                        .isEqualTo(span.path("args").path("predictedStopCopyBytes").asLong());
                devicesWithData.add(span.path("track").asText());
            }
        }
        assertThat(traced).isBetween(end.path("downtimeMs").asDouble() - 1, end.path("downtimeMs").asDouble() + 1);
        List<String> ids = new java.util.ArrayList<>();
        end.path("devices").forEach(device -> ids.add(device.path("id").asText()));
        assertThat(devicesWithData).containsExactlyInAnyOrderElementsOf(ids);
    }

    /**
     * W8, F7: a GPU that re-partitions its memory every 100 ms keeps sending new initial data; the
     * source switches over only once the destination acknowledged the latest round, and the copy's
     * device state is the source's.
     */
    @Test
    void aDeviceThatReinitialisesIsMigratedOnceItsLatestInitialDataIsLoaded() throws Exception {
        daemons = new TestDaemons();
        daemons.sourceApi.post("/v1/vms", gpuVm("vm1", true, 0, Map.of("reinitMs", 100)));
        await().atMost(Duration.ofSeconds(10)).until(() -> stat(daemons.sourceApi.get("/v1/vms/vm1"), "gpu0", "reinits") > 0);
        List<JsonNode> barriers = new CopyOnWriteArrayList<>();
        String id = daemons.migrate("vm1", Map.of("channels", 2)).path("id").asText();
        CompletableFuture<Void> stream = CompletableFuture.runAsync(() -> {
            try {
                daemons.sourceApi.events("/v1/migrations/" + id + "/events", (type, data) -> {
                    if (type.equals("barrier") || type.equals("device")) {
                        barriers.add(data);
                    }
                    return !type.equals("end");
                });
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(end.path("switchoverAckWaitMs").isNumber()).isTrue();
        stream.get();
        // The event stream said what each barrier was about to do, then every device's state change.
        assertThat(barriers).anySatisfy(event -> assertThat(event.path("step").asText()).isEqualTo("S3 vIOMMU grace"));
        assertThat(barriers).anySatisfy(event -> assertThat(event.path("device").asText()).isEqualTo("gpu0"));

        daemons.sourceApi.get("/v1/vms/vm1");
        daemons.destinationApi.post("/v1/vms/vm1/pause", Map.of());
        JsonNode copy = daemons.destinationApi.get("/v1/vms/vm1/digest");
        assertThat(copy.path("devices").path("gpu0").asText()).isNotEmpty();
    }

    /** F8: a destination that does not host a kind refuses it before anything moves; nothing changes on either side. */
    @Test
    void aDestinationThatDoesNotHostAKindRefusesTheVmAndNothingMoves() throws Exception {
        daemons = new TestDaemons(TestDaemons.base(), TestDaemons.base().withDeviceKinds(List.of("nic", "serial")));
        daemons.sourceApi.post("/v1/vms", gpuVm("vm1", false, 0, Map.of()));
        JsonNode digest = daemons.sourceApi.get("/v1/vms/vm1/digest");
        for (boolean dryRun : List.of(true, false)) {
            String id = daemons.migrate("vm1", Map.of("dryRun", dryRun)).path("id").asText();
            JsonNode end = daemons.awaitEnd(id);
            assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("failed");
            assertThat(end.path("error").path("code").asText()).isEqualTo("incompatible_device");
            assertThat(end.path("error").path("details").path("device").asText()).isEqualTo("gpu0");
            assertThat(end.path("error").path("details").path("field").asText()).isEqualTo("kind");
            assertThat(end.path("memoryBytes").path("transferred").asLong()).as("nothing moved").isZero();
            daemons.assertRolledBack("vm1", digest, "paused");
            // A dry run's refusal is its answer, not a failed migration: counted as a dry run on both sides.
            String failures = "ferry_migration_failures_total{reason=\"incompatible_device\",role=\"%s\"} %s";
            String finished = "ferry_migrations_finished_total{result=\"%s\",role=\"%s\"} 1.0";
            String failed = dryRun ? "0.0" : "1.0";
            awaitMetrics(daemons.source.http(), String.format(failures, "source", failed), String.format(finished, "dry_run", "source"));
            awaitMetrics(daemons.destination.http(), String.format(failures, "destination", failed),
                    String.format(finished, "dry_run", "destination"));
        }
        awaitMetrics(daemons.source.http(), "ferry_migrations_finished_total{result=\"failed\",role=\"source\"} 1.0");
    }

    /** Waits until the daemon's metrics hold every one of {@code lines}; counters are bumped as a migration ends. */
    private static void awaitMetrics(Object http, String... lines) {
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(metrics(http)).contains(lines));
    }

    private static String metrics(Object http) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://" + http + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString()).body();
    }

    /** A dry run: the handshake and the compatibility check, then it ends; nothing moved, the VM stays here. */
    @Test
    void aDryRunOfACompatibleVmCompletesAndChangesNothing() throws Exception {
        daemons = new TestDaemons();
        daemons.sourceApi.post("/v1/vms", gpuVm("vm1", true, 0, Map.of()));
        String id = daemons.migrate("vm1", Map.of("dryRun", true)).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(end.path("memoryBytes").path("transferred").asLong()).isZero();
        assertThat(end.path("policy").path("dryRun").asBoolean()).isTrue();
        assertThat(daemons.sourceApi.get("/v1/vms/vm1").path("state").asText()).isEqualTo("running");
        assertThat(daemons.awaitDestinationEnd(id).path("phase").asText()).isEqualTo("completed");
        assertThat(daemons.destinationApi.get("/v1/vms").path("vms")).isEmpty();
    }

    /** A VM whose only memory traffic is a GPU's own work: the vCPUs run and dirty nothing. */
    private static Map<String, Object> busyGpu(String id) {
        return Map.of("id", id, "memoryBytes", 4L << 20, "vcpus", 1, "initialMemory", "random", "running", true,
                "workload", Map.of("dirtyBytesPerSecond", 0, "deviceDirtyBytesPerSecond", 4L << 20, "seed", 5),
                "devices", List.of(Map.of("id", "gpu0", "kind", "gpu", "memoryBytes", 4L << 20)));
    }

    /**
     * F9: a GPU's own work (4 MiB/s: a thousand writes a second, each dirtying a page) over a 4 MiB/s link dirties
     * about as much as each pass sends, so the estimate stays above the limit; the source slows the
     * device's work, as auto-converge slows the vCPUs, until it converges, and lifts the slowdown after.
     */
    @Test
    void aDeviceWhoseOwnWorkKeepsTheEstimateAboveTheLimitIsSlowedUntilItConverges() throws Exception {
        daemons = new TestDaemons();
        daemons.sourceApi.post("/v1/vms", busyGpu("vm1"));
        String id = daemons.migrate("vm1", Map.of("downtimeLimitMs", 100, "maxBandwidthBytesPerSecond", 4L << 20)).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(end.path("deviceThrottlePercent").asInt()).as("the devices' work was slowed: %s", end).isGreaterThanOrEqualTo(20);
        assertThat(end.path("throttlePercent").asInt()).as("the vCPUs dirty nothing: they were not the cause").isZero();
        assertThat(end.path("downtimeLimitMet").asBoolean()).isEqualTo(end.path("downtimeMs").asLong() <= 100);
        JsonNode arrived = daemons.destinationApi.get("/v1/vms/vm1");
        assertThat(arrived.path("workload").path("deviceThrottlePercent").asInt()).as("lifted on the copy").isZero();
        await().atMost(Duration.ofSeconds(10)).until(() -> stat(daemons.destinationApi.get("/v1/vms/vm1"), "gpu0", "ownWrites") > 0);
    }

    /** F9 without auto-converge: nothing is slowed, and the migration fails saying what kept it from converging. */
    @Test
    void withoutAutoConvergeADeviceThatOutpacesTheLinkDoesNotConverge() throws Exception {
        daemons = new TestDaemons();
        daemons.sourceApi.post("/v1/vms", busyGpu("vm1"));
        String id = daemons.migrate("vm1", Map.of("downtimeLimitMs", 100, "maxBandwidthBytesPerSecond", 4L << 20,
                "autoConverge", false, "maxIterations", 4)).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).isEqualTo("failed");
        assertThat(end.path("error").path("code").asText()).isEqualTo("timeout");
        assertThat(end.path("error").path("message").asText()).contains("did not converge in 4 passes");
        assertThat(end.path("deviceThrottlePercent").asInt()).isZero();
        daemons.assertRolledBack("vm1", null, "running");
    }

    private static long stat(JsonNode vm, String device, String stat) {
        for (JsonNode d : vm.path("devices")) {
            if (d.path("id").asText().equals(device)) {
                return d.path("stats").path(stat).asLong();
            }
        }
        return -1;
    }
}
