package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.cli.ApiClient;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A migration's {@code compression} between two real daemons: page data goes compressed and arrives
 * intact, the wire carries less than the pages hold, and a running guest's pages torn under compression
 * come again like any others.
 */
class CompressionTest {
    @AutoClose
    private final TestDaemons daemons = TestDaemons.started();

    private static Map<String, Object> mixedVm(String id, boolean running, long dirtyBytesPerSecond) {
        return Map.of("id", id, "memoryBytes", 32L << 20, "vcpus", 2, "initialMemory", "mixed", "running", running,
                "workload", Map.of("dirtyBytesPerSecond", dirtyBytesPerSecond, "seed", 23),
                "devices", List.of(Map.of("id", "nic0", "kind", "nic"), Map.of("id", "gpu0", "kind", "gpu", "memoryBytes", 4L << 20)));
    }

    @ParameterizedTest
    @ValueSource(strings = {"lz4", "zstd"})
    void aPausedVmMigratesCompressedAndArrivesIntact(String codec) throws Exception {
        String vm = "mixed-" + codec;
        daemons.sourceApi.post("/v1/vms", mixedVm(vm, false, 0));
        JsonNode before = daemons.sourceApi.get("/v1/vms/" + vm + "/digest");

        JsonNode migration = daemons.migrate(vm, Map.of("compression", codec, "channels", 2));
        assertThat(migration.path("policy").path("compression").asText()).isEqualTo(codec);
        JsonNode end = daemons.awaitEnd(migration.path("id").asText());
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");

        long pageBytes = end.path("memoryBytes").path("transferred").asLong();
        assertThat(pageBytes).as("a quarter of the pages is zero, the rest has bytes").isGreaterThan(20L << 20);
        // Half the memory is text-like: compressed, everything on the wire is well under the page bytes alone.
        assertThat(end.path("transferredBytes").asLong()).as(end.toString()).isLessThan(pageBytes * 3 / 4);
        assertThat(daemons.destinationApi.get("/v1/vms/" + vm + "/digest")).isEqualTo(before);
        JsonNode arrived = daemons.awaitDestinationEnd(migration.path("id").asText());
        assertThat(arrived.path("memoryBytes").path("tornPages").asLong()).isZero();
    }

    /** F13 with compression: the limit counts the bytes on the wire, compressed, and pages drain faster than the limit. */
    @Test
    void theRateLimitCountsCompressedBytesOnTheWire() throws Exception {
        daemons.sourceApi.post("/v1/vms", mixedVm("limited", false, 0));
        long limit = 4L << 20;
        JsonNode end = daemons.awaitEnd(daemons.migrate("limited", Map.of("compression", "zstd", "maxBandwidthBytesPerSecond", limit))
                .path("id").asText());
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        double seconds = java.time.Duration.between(java.time.Instant.parse(end.path("startedAt").asText()),
                java.time.Instant.parse(end.path("finishedAt").asText())).toNanos() / 1e9;
        long wire = end.path("transferredBytes").asLong();
        long pages = end.path("memoryBytes").path("transferred").asLong();
        assertThat(wire / seconds).as("%d bytes on the wire in %.2f s", wire, seconds).isLessThanOrEqualTo(limit * 1.05);
        assertThat(pages / seconds).as("page bytes move faster than the limit").isGreaterThan(limit);
    }

    @Test
    void aRunningVmMigratesCompressedAndVerified() throws Exception {
        daemons.sourceApi.post("/v1/vms", mixedVm("busy", true, 8L << 20));
        JsonNode migration = daemons.migrate("busy", Map.of("compression", "zstd", "verify", true));
        JsonNode end = daemons.awaitEnd(migration.path("id").asText());
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(end.path("verified").asBoolean()).as("the destination's frozen VM is the source's").isTrue();
        assertThat(end.path("iterations").asLong()).isGreaterThanOrEqualTo(2);
    }

    @Test
    void anUnknownCompressionIsRefusedAndNothingStarts() throws Exception {
        daemons.sourceApi.post("/v1/vms", mixedVm("still", false, 0));
        assertThatThrownBy(() -> daemons.migrate("still", Map.of("compression", "gzip")))
                .isInstanceOfSatisfying(ApiClient.ApiError.class, e -> {
                    assertThat(e.status()).isEqualTo(400);
                    assertThat(e.code()).isEqualTo("invalid_request");
                    assertThat(e.getMessage()).contains("compression must be none, lz4 or zstd, not 'gzip'");
                });
        assertThat(daemons.sourceApi.get("/v1/migrations").path("migrations")).isEmpty();
        assertThat(daemons.sourceApi.get("/v1/vms/still").path("state").asText()).isEqualTo("paused");
    }
}
