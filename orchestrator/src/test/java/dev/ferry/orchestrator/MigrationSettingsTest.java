package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.cli.ApiClient;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/** A running migration takes a new rate limit and downtime limit (as QEMU's migrate-set-parameters). */
class MigrationSettingsTest {
    @AutoClose
    private final TestDaemons daemons = TestDaemons.started();

    @Test
    void aThrottledMigrationLiftsItsLimitAndFinishes() throws Exception {
        JsonNode digest = daemons.pausedVm("vm1");
        String id = daemons.migrate("vm1", Map.of("maxBandwidthBytesPerSecond", 64 * 1024)).path("id").asText();
        await().atMost(Duration.ofSeconds(10)).until(() ->
                daemons.sourceApi.get("/v1/migrations/" + id).path("memoryBytes").path("transferred").asLong() > 0);

        assertThatThrownBy(() -> daemons.sourceApi.patch("/v1/migrations/" + id, Map.of("maxBandwidthBytesPerSecond", 1000)))
                .isInstanceOfSatisfying(ApiClient.ApiError.class, e -> assertThat(e.status()).isEqualTo(400));
        assertThatThrownBy(() -> daemons.destinationApi.patch("/v1/migrations/" + id, Map.of("downtimeLimitMs", 50)))
                .isInstanceOfSatisfying(ApiClient.ApiError.class, e -> assertThat(e.code()).isEqualTo("not_a_source"));

        JsonNode updated = daemons.sourceApi.patch("/v1/migrations/" + id,
                Map.of("maxBandwidthBytesPerSecond", 0, "downtimeLimitMs", 500));
        assertThat(updated.path("policy").path("maxBandwidthBytesPerSecond").asLong()).isZero();
        assertThat(updated.path("policy").path("downtimeLimitMs").asLong()).isEqualTo(500);

        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(daemons.destinationApi.get("/v1/vms/vm1/digest")).isEqualTo(digest);
        assertThatThrownBy(() -> daemons.sourceApi.patch("/v1/migrations/" + id, Map.of("downtimeLimitMs", 50)))
                .isInstanceOfSatisfying(ApiClient.ApiError.class, e -> assertThat(e.code()).isEqualTo("migration_finished"));
    }
}
