package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/** Two real daemons; VMs migrate between them through the reference flows (SPEC §5). */
class MigrationEndToEndTest {
    @AutoClose
    private final TestDaemons daemons = TestDaemons.started();

    @Test
    void pausedVmMigratesAndItsDigestIsUnchanged() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("quiet", false, 0, 0, TestDaemons.p2pDevices()));
        JsonNode before = daemons.sourceApi.get("/v1/vms/quiet/digest");

        JsonNode migration = daemons.migrate("quiet", Map.of("channels", 2));
        JsonNode end = daemons.awaitEnd(migration.path("id").asText());
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(end.path("downtimeMs").isNumber()).isTrue();
        assertThat(end.path("memoryBytes").path("transferred").asLong()).isGreaterThanOrEqualTo(32L << 20);

        JsonNode arrived = daemons.destinationApi.get("/v1/vms/quiet");
        assertThat(arrived.path("state").asText()).as("the source's vCPUs were stopped, so these stay stopped").isEqualTo("paused");
        JsonNode after = daemons.destinationApi.get("/v1/vms/quiet/digest");
        assertThat(after).isEqualTo(before);
        assertThat(daemons.sourceApi.get("/v1/vms/quiet").path("state").asText()).isEqualTo("migrated");
        JsonNode destinationSide = daemons.awaitDestinationEnd(migration.path("id").asText());
        assertThat(destinationSide.path("role").asText()).isEqualTo("destination");
        assertThat(destinationSide.path("phase").asText()).isEqualTo("completed");
    }

    @Test
    void memoryNeverWrittenGoesAsZeroPagesOverEveryChannel() throws Exception {
        // 2 GiB never written, over 4 channels: a few ZERO_PAGES frames on each, every page arrived (F11).
        daemons.sourceApi.post("/v1/vms", Map.of("id", "idle", "memoryBytes", 2L << 30, "running", false,
                "devices", List.of(Map.of("id", "serial0", "kind", "serial"))));
        JsonNode before = daemons.sourceApi.get("/v1/vms/idle/digest");
        JsonNode end = daemons.awaitEnd(daemons.migrate("idle", Map.of("channels", 4)).path("id").asText());
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(end.path("memoryBytes").path("zeroPages").asLong()).isEqualTo((2L << 30) / 4096);
        assertThat(end.path("transferredBytes").asLong()).as("frames per stretch, not entries per page").isLessThan(1L << 20);
        assertThat(daemons.destinationApi.get("/v1/vms/idle/digest")).isEqualTo(before);
    }

    @Test
    void aVmOfDeviceStateAndMemoryNeverWrittenConvergesAtOnce() throws Exception {
        // Its first pass is a few ZERO_PAGES frames: no bandwidth to measure, and 64 devices' state left (F3, F9).
        List<Map<String, Object>> devices = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            devices.add(Map.of("id", "serial" + i, "kind", "serial"));
        }
        daemons.sourceApi.post("/v1/vms", Map.of("id", "many", "memoryBytes", 64L << 20, "running", false, "devices", devices));
        JsonNode end = daemons.awaitEnd(daemons.migrate("many", Map.of()).path("id").asText());
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(end.path("iterations").asLong()).isLessThanOrEqualTo(2);
        assertThat(end.path("downtimeLimitMet").asBoolean()).isTrue();
    }

    @Test
    void runningVmWithP2pMigratesVerifiedWithGraceBarriersOnBothSides() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("busy", true, 8L << 20, 300, TestDaemons.p2pDevices()));
        await().atMost(Duration.ofSeconds(20)).until(() ->
                stat(daemons.sourceApi.get("/v1/vms/busy"), "gpu0", "p2pIssued") > 10);

        JsonNode migration = daemons.migrate("busy", Map.of("verify", true, "channels", 2));
        String id = migration.path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(end.path("verified").asBoolean()).isTrue();
        assertThat(end.path("iterations").asLong()).isGreaterThanOrEqualTo(2);
        // F6: downtime runs from S4 (the vCPUs stop as p2p_grace begins) to CONFIRM, within switchover;
        // so it holds all of stop_copy and ends before the switchover does (1 ms for rounding).
        JsonNode p2pGrace = phase(end, "p2p_grace");
        JsonNode switchover = phase(end, "switchover");
        long window = switchover.path("startMs").asLong() + switchover.path("durationMs").asLong() - p2pGrace.path("startMs").asLong();
        assertThat(end.path("downtimeMs").asLong()).isGreaterThanOrEqualTo(phase(end, "stop_copy").path("durationMs").asLong())
                .isLessThanOrEqualTo(window + 1);

        JsonNode arrived = daemons.destinationApi.get("/v1/vms/busy");
        assertThat(arrived.path("state").asText()).isEqualTo("running");
        await().atMost(Duration.ofSeconds(20)).until(() -> stat(daemons.destinationApi.get("/v1/vms/busy"), "nic0", "p2pReceived") > 0);

        // F2: no MMIO reached a stopped device, on either side.
        for (JsonNode vm : List.of(daemons.sourceApi.get("/v1/vms/busy"), daemons.destinationApi.get("/v1/vms/busy"))) {
            for (JsonNode device : vm.path("devices")) {
                assertThat(device.path("stats").path("mmioWhileStopped").asLong()).as("F2 on %s", device.path("id")).isZero();
            }
        }

        // F1 on the source: every device in the grace state before any device left RUNNING.
        List<JsonNode> source = events(daemons.sourceApi.get("/v1/migrations/" + id + "/trace"));
        Set<String> devices = new HashSet<>();
        daemons.sourceApi.get("/v1/vms/busy").path("devices").forEach(device -> devices.add(device.path("id").asText()));
        assertThat(devices).contains("nic0", "gpu0", "serial0", "nvme0");
        assertBarrier(source, devices, "RUNNING|SAVING|NDMA", event -> !event.path("to").asText().contains("RUNNING"));
        // ... and on the destination: every device in NDMA|RUNNING before any became RUNNING.
        daemons.awaitDestinationEnd(id);
        List<JsonNode> destination = events(daemons.destinationApi.get("/v1/migrations/" + id + "/trace"));
        assertBarrier(destination, devices, "RUNNING|NDMA", event -> event.path("to").asText().equals("RUNNING"));

        JsonNode chrome = daemons.sourceApi.get("/v1/migrations/" + id + "/trace?format=chrome");
        Set<String> tracks = new HashSet<>();
        for (JsonNode event : chrome.path("traceEvents")) {
            if (event.path("ph").asText().equals("M") && event.path("name").asText().equals("thread_name")) {
                tracks.add(event.path("args").path("name").asText());
            }
        }
        Set<String> expected = new HashSet<>(devices);
        expected.add("phases");
        expected.add("passes");
        expected.add("downtime");
        assertThat(tracks).as("a track per device, one each for the phases, the passes and the downtime").isEqualTo(expected);
    }

    @Test
    void deviceWithoutNdmaSkipsTheNdmaBitAndP2pStaysOff() throws Exception {
        List<Map<String, Object>> devices = List.of(Map.of("id", "crypto0", "kind", "crypto"), Map.of("id", "nic0", "kind", "nic"));
        JsonNode vm = daemons.sourceApi.post("/v1/vms", TestDaemons.vm("vault", true, 4L << 20, 0, devices));
        assertThat(vm.path("p2pActive").asBoolean()).isFalse();
        JsonNode migration = daemons.migrate("vault", Map.of("verify", true));
        String id = migration.path("id").asText();
        assertThat(daemons.awaitEnd(id).path("phase").asText()).isEqualTo("completed");
        List<JsonNode> trace = events(daemons.sourceApi.get("/v1/migrations/" + id + "/trace"));
        List<String> crypto = new ArrayList<>();
        List<String> nic = new ArrayList<>();
        for (JsonNode event : trace) {
            (event.path("device").asText().equals("crypto0") ? crypto : nic).add(event.path("to").asText());
        }
        // F1: its grace step merges into the next: it stays SAVING|RUNNING through S3 and S4.
        assertThat(crypto).containsExactly("RUNNING|SAVING", "SAVING");
        assertThat(nic).containsExactly("RUNNING|SAVING", "RUNNING|SAVING|NDMA", "SAVING");
    }

    private static List<JsonNode> events(JsonNode trace) {
        List<JsonNode> events = new ArrayList<>();
        trace.path("events").forEach(events::add);
        return events;
    }

    /** Every device reached {@code graceState} before the first event that {@code leaves} the barrier. */
    private static JsonNode phase(JsonNode migration, String name) {
        for (JsonNode phase : migration.path("phases")) {
            if (phase.path("phase").asText().equals(name)) {
                return phase;
            }
        }
        throw new AssertionError("no phase " + name + " in " + migration.path("phases"));
    }

    private static void assertBarrier(List<JsonNode> trace, Set<String> devices, String graceState,
                                      java.util.function.Predicate<JsonNode> leaves) {
        Set<String> arrived = new HashSet<>();
        boolean left = false;
        for (JsonNode event : trace) {
            assertThat(event.path("result").asText()).isEqualTo("ok");
            if (event.path("to").asText().equals(graceState)) {
                assertThat(left).as("%s reached %s after a device had moved on", event.path("device"), graceState).isFalse();
                arrived.add(event.path("device").asText());
            } else if (leaves.test(event)) {
                assertThat(arrived).as("devices in %s before %s moved on", graceState, event.path("device")).isEqualTo(devices);
                left = true;
            }
        }
        assertThat(left).isTrue();
    }

    static long stat(JsonNode vm, String device, String stat) {
        for (JsonNode d : vm.path("devices")) {
            if (d.path("id").asText().equals(device)) {
                return d.path("stats").path(stat).asLong();
            }
        }
        throw new AssertionError("no device " + device);
    }
}
