package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/**
 * Device-level faults (a device's {@code faults}) between two real daemons, and the source's recovery from each
 * as QEMU recovers a VFIO device: the recovery state first, a reset when the device cannot take it (D4, D5).
 * Every failure comes before the commit, so the source VM runs again as it was (F4): its memory and the
 * devices that were not reset are exactly as before, and the destination keeps nothing.
 */
class DeviceFaultsTest {
    @AutoClose
    private final TestDaemons daemons = TestDaemons.started();

    /** A paused VM whose {@code faulty} device injects {@code faults}; its digest before anything happens. */
    private JsonNode pausedVm(String faultyKind, Map<String, Object> faults) throws Exception {
        List<Map<String, Object>> devices = new ArrayList<>();
        Map<String, Object> faulty = new HashMap<>(Map.of("id", "faulty0", "kind", faultyKind, "faults", faults));
        if (faultyKind.equals("gpu")) {
            faulty.put("memoryBytes", 1L << 20);
        }
        devices.add(faulty);
        devices.add(Map.of("id", "nic0", "kind", "nic"));
        devices.add(Map.of("id", "serial0", "kind", "serial"));
        daemons.sourceApi.post("/v1/vms", Map.of("id", "vm1", "memoryBytes", 16L << 20, "vcpus", 1, "initialMemory", "random",
                "running", false, "workload", Map.of("seed", 11), "devices", devices));
        assertThat(daemons.sourceApi.get("/v1/vms/vm1/devices/faulty0").path("faults").path("stateWrites").size())
                .isEqualTo(faults.containsKey("stateWrites") ? ((List<?>) faults.get("stateWrites")).size() : 0);
        return daemons.sourceApi.get("/v1/vms/vm1/digest");
    }

    private JsonNode migrateAndFail(String code) {
        String id;
        try {
            id = daemons.migrate("vm1", Map.of()).path("id").asText();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("failed");
        assertThat(end.path("error").path("code").asText()).as(end.toString()).isEqualTo(code);
        return end;
    }

    private static JsonNode recovery(JsonNode end, String device) {
        for (JsonNode recovery : end.path("recoveries")) {
            if (recovery.path("device").asText().equals(device)) {
                return recovery;
            }
        }
        throw new AssertionError("no recovery of " + device + " in " + end.path("recoveries"));
    }

    @Test
    void aRefusedStateWriteFailsTheMigrationAndTheRecoveryStateBringsTheDeviceBack() throws Exception {
        JsonNode digest = pausedVm("nic", Map.of("stateWrites", List.of(Map.of("step", "capture", "result", "refused"))));
        JsonNode end = migrateAndFail("device_transition_failed");
        assertThat(end.path("error").path("message").asText()).contains("faulty0").contains("CAPTURE").contains("injected");
        JsonNode recovery = recovery(end, "faulty0");
        assertThat(recovery.path("state").asText()).as("refused: the state unchanged (D2)").isEqualTo("RUNNING|SAVING|NDMA");
        assertThat(recovery.path("action").asText()).isEqualTo("recovery_state");
        assertThat(end.path("recoveries").findValuesAsText("action")).doesNotContain("reset");
        daemons.assertRolledBack("vm1", digest, "paused");
    }

    @Test
    void aStateWriteThatFailsIntoErrorIsRecoveredByAReset() throws Exception {
        JsonNode digest = pausedVm("nic", Map.of("stateWrites", List.of(Map.of("step", "capture", "result", "error"))));
        JsonNode end = migrateAndFail("device_transition_failed");
        JsonNode recovery = recovery(end, "faulty0");
        assertThat(recovery.path("state").asText()).isEqualTo("ERROR");
        assertThat(recovery.path("action").asText()).isEqualTo("reset");
        JsonNode after = daemons.sourceApi.get("/v1/vms/vm1/digest");
        // A reset device starts over (D5); everything else of the VM is as it was.
        assertThat(after.path("memory")).isEqualTo(digest.path("memory"));
        assertThat(after.path("devices").path("nic0")).isEqualTo(digest.path("devices").path("nic0"));
        assertThat(after.path("devices").path("serial0")).isEqualTo(digest.path("devices").path("serial0"));
        daemons.assertRolledBack("vm1", null, "paused");
    }

    @Test
    void aDeviceWhoseRecoveryStateFailsTooIsReset() throws Exception {
        pausedVm("nic", Map.of("stateWrites", List.of(Map.of("step", "capture", "result", "refused"),
                Map.of("step", "save_end", "result", "error"))));
        JsonNode end = migrateAndFail("device_transition_failed");
        JsonNode recovery = recovery(end, "faulty0");
        assertThat(recovery.path("state").asText()).isEqualTo("RUNNING|SAVING|NDMA");
        assertThat(recovery.path("action").asText()).isEqualTo("reset");
        assertThat(recovery.path("result").asText()).contains("recovery state").contains("SAVE_END");
        daemons.assertRolledBack("vm1", null, "paused");
    }

    @Test
    void aFailedWindowReadFailsTheSaveAndTheSourceRecovers() throws Exception {
        JsonNode digest = pausedVm("gpu", Map.of("windowReads", Map.of("failAfterBytes", 1000)));
        JsonNode end = migrateAndFail("device_save_failed");
        assertThat(end.path("error").path("message").asText()).contains("faulty0").contains("failed after");
        assertThat(recovery(end, "faulty0").path("action").asText()).isEqualTo("recovery_state");
        daemons.assertRolledBack("vm1", digest, "paused");
    }

    @Test
    void aCorruptedImageFailsTheDestinationsLoadAndTheSourceRollsBack() throws Exception {
        JsonNode digest = pausedVm("nic", Map.of("corruptImageAtByte", 100));
        JsonNode end = migrateAndFail("device_load_failed");
        assertThat(end.path("error").path("message").asText()).contains("faulty0");
        daemons.assertRolledBack("vm1", digest, "paused");
    }

    @Test
    void aFailedWindowWriteOnTheDestinationFailsItsLoad() throws Exception {
        JsonNode digest = pausedVm("nic", Map.of("windowWrites", Map.of("failAfterBytes", 1000)));
        JsonNode end = migrateAndFail("device_load_failed");
        assertThat(end.path("error").path("message").asText()).contains("faulty0");
        daemons.assertRolledBack("vm1", digest, "paused");
    }

    @Test
    void aStepOnlyTheDestinationTakesFailsThereAndTheSourceRollsBack() throws Exception {
        JsonNode digest = pausedVm("nic", Map.of("stateWrites", List.of(Map.of("step", "load", "result", "error"))));
        JsonNode end = migrateAndFail("device_load_failed");
        assertThat(end.path("error").path("message").asText()).contains("faulty0");
        daemons.assertRolledBack("vm1", digest, "paused");
    }

    @Test
    void shortReadsAndWritesAndASlowQuiesceAreNotFailures() throws Exception {
        JsonNode digest = pausedVm("gpu", Map.of("windowReads", Map.of("maxBytes", 1000), "windowWrites", Map.of("maxBytes", 777),
                "slowQuiesceMs", 30));
        String id = daemons.migrate("vm1", Map.of("verify", true)).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(end.path("verified").asBoolean()).isTrue();
        assertThat(end.path("recoveries")).isEmpty();
        assertThat(daemons.destinationApi.get("/v1/vms/vm1/digest")).isEqualTo(digest);
        JsonNode copy = daemons.destinationApi.get("/v1/vms/vm1/devices/faulty0");
        assertThat(copy.path("faults").path("slowQuiesceMs").asLong()).as("the faults went with the device").isEqualTo(30);
    }

    @Test
    void unknownFaultFieldsAndValuesAreRefused() throws Exception {
        for (Map<String, Object> faults : List.of(Map.<String, Object>of("flaky", true),
                Map.<String, Object>of("stateWrites", List.of(Map.of("step", "thaw"))),
                Map.<String, Object>of("stateWrites", List.of(Map.of("step", "freeze", "result", "maybe"))),
                Map.<String, Object>of("windowReads", Map.of("maxBytes", 10, "minBytes", 1)),
                Map.<String, Object>of("slowQuiesceMs", 10_001))) {
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> daemons.sourceApi.post("/v1/vms",
                    Map.of("devices", List.of(Map.of("kind", "nic", "faults", faults)))))
                    .as("%s", faults).isInstanceOf(dev.ferry.orchestrator.cli.ApiClient.ApiError.class).extracting("status").isEqualTo(400);
        }
    }
}
