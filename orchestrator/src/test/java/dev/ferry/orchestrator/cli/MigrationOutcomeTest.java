package dev.ferry.orchestrator.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.api.Json;
import org.junit.jupiter.api.Test;

/** The line {@code ferryctl migrate --watch} ends with: what a script or an operator needs of the end. */
class MigrationOutcomeTest {
    private static JsonNode end(String json) throws Exception {
        return Json.mapper().readTree(json);
    }

    @Test
    void aCompletedMigrationSaysItsDowntimeAgainstTheLimitAndWhetherItVerified() throws Exception {
        assertThat(MigrationCommands.outcome(end("""
                {"phase": "completed", "error": null, "downtimeMs": 23, "downtimeLimitMet": true,
                 "policy": {"downtimeLimitMs": 300}, "verified": true}""")))
                .isEqualTo("ok, downtime 23 ms within its 300 ms limit, verified");
        assertThat(MigrationCommands.outcome(end("""
                {"phase": "completed", "error": null, "downtimeMs": 320, "downtimeLimitMet": false,
                 "policy": {"downtimeLimitMs": 300}, "verified": null}""")))
                .as("F6: never reported as meeting a limit it exceeded").isEqualTo("ok, downtime 320 ms over its 300 ms limit");
    }

    @Test
    void aFailedMigrationSaysItsErrorAndADestinationsViewJustOk() throws Exception {
        assertThat(MigrationCommands.outcome(end("""
                {"phase": "failed", "error": {"code": "device_load_failed", "message": "device nic0 could not load its data"}}""")))
                .isEqualTo("device_load_failed: device nic0 could not load its data");
        assertThat(MigrationCommands.outcome(end("""
                {"phase": "completed", "error": null, "downtimeMs": null, "verified": null, "policy": {}}"""))).isEqualTo("ok");
    }
}
