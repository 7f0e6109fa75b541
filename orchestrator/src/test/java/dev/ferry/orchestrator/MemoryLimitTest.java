package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.device.memory.ChunkPool;
import dev.ferry.orchestrator.cli.ApiClient;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * A daemon hosts no more guest and device memory than it has (maxTotalMemoryBytes, or the JVM's
 * direct-memory limit): a VM, a hot-plugged device or an incoming migration beyond it is refused at
 * once, and memory freed by a deleted VM is kept in the pool for the next one; a pool prefilled at start backs
 * the first incoming VM too.
 */
class MemoryLimitTest {
    private static final long MIB = 1L << 20;

    private static Map<String, Object> vm(String id, long memoryBytes) {
        return Map.of("id", id, "memoryBytes", memoryBytes, "initialMemory", "random", "running", false,
                "devices", List.of(Map.of("id", "serial0", "kind", "serial")));
    }

    private static double metric(Ferryd daemon, String name) throws Exception {
        String text = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                java.net.URI.create("http://" + daemon.http() + "/metrics")).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString()).body();
        Matcher m = Pattern.compile("^" + name + " (\\S+)$", Pattern.MULTILINE).matcher(text);
        assertThat(m.find()).as(name).isTrue();
        return Double.parseDouble(m.group(1));
    }

    @Test
    void vmsAndDevicesBeyondTheBudgetAreRefusedAndFreedMemoryIsKeptForTheNextVm() throws Exception {
        try (TestDaemons daemons = new TestDaemons(TestDaemons.base().withMemory(64 * MIB, false, 100 * MIB))) {
            ApiClient api = daemons.sourceApi;
            api.post("/v1/vms", vm("first", 64 * MIB));
            assertThatThrownBy(() -> api.post("/v1/vms", vm("second", 64 * MIB)))
                    .isInstanceOfSatisfying(ApiClient.ApiError.class, e -> {
                        assertThat(e.status()).isEqualTo(409);
                        assertThat(e.code()).isEqualTo("insufficient_memory");
                        assertThat(e.getMessage()).contains("does not fit");
                    });
            assertThatThrownBy(() -> api.post("/v1/vms/first/devices", Map.of("id", "gpu9", "kind", "gpu", "memoryBytes", 64 * MIB)))
                    .isInstanceOfSatisfying(ApiClient.ApiError.class, e -> assertThat(e.code()).isEqualTo("insufficient_memory"));
            assertThat(metric(daemons.source, "ferry_memory_committed_bytes")).isGreaterThanOrEqualTo(64 * MIB);

            api.delete("/v1/vms/first");
            assertThat(metric(daemons.source, "ferry_memory_pool_bytes")).as("random memory was written: its chunks are kept")
                    .isEqualTo(64 * MIB);
            JsonNode second = api.post("/v1/vms", vm("second", 64 * MIB));
            assertThat(second.path("id").asText()).isEqualTo("second");
            assertThat(metric(daemons.source, "ferry_memory_pool_bytes")).as("and handed to the next VM").isZero();
        }
    }

    @Test
    void aPrefilledPoolIsFullBeforeAnyVmAndBacksTheFirstIncomingVm() throws Exception {
        try (TestDaemons daemons = new TestDaemons(TestDaemons.base(), TestDaemons.base().withMemory(64 * MIB, true, 100 * MIB))) {
            await().atMost(Duration.ofSeconds(30)).until(() -> metric(daemons.destination, "ferry_memory_pool_bytes") == 64 * MIB);
            if (ChunkPool.hugePages()) {
                assertThat(metric(daemons.destination, "ferry_memory_mapped_bytes")).as("the pool's chunks, mapped in huge pages")
                        .isGreaterThanOrEqualTo(64 * MIB);
            }
            assertThat(metric(daemons.destination, "ferry_memory_pool_reused_chunks_total")).isZero();

            daemons.sourceApi.post("/v1/vms", vm("first", 32 * MIB));
            String before = daemons.sourceApi.get("/v1/vms/first/digest").path("vm").asText();
            JsonNode end = daemons.awaitEnd(daemons.migrate("first", Map.of()).path("id").asText());
            assertThat(end.path("phase").asText()).isEqualTo("completed");
            assertThat(daemons.destinationApi.get("/v1/vms/first/digest").path("vm").asText()).isEqualTo(before);
            assertThat(metric(daemons.destination, "ferry_memory_pool_reused_chunks_total"))
                    .as("every chunk of the random 32 MiB came from the pool").isEqualTo(16);
            assertThat(metric(daemons.destination, "ferry_memory_pool_bytes")).isEqualTo(32 * MIB);
        }
    }

    @Test
    void aDestinationWithoutRoomRefusesTheMigrationAndTheSourceKeepsItsVm() throws Exception {
        try (TestDaemons daemons = new TestDaemons(TestDaemons.base(), TestDaemons.base().withMemory(0, false, 16 * MIB))) {
            daemons.sourceApi.post("/v1/vms", vm("big", 32 * MIB));
            String before = daemons.sourceApi.get("/v1/vms/big/digest").path("vm").asText();
            JsonNode end = daemons.awaitEnd(daemons.migrate("big", Map.of()).path("id").asText());
            assertThat(end.path("phase").asText()).isEqualTo("failed");
            assertThat(end.path("error").path("code").asText()).isEqualTo("busy");
            assertThat(end.path("error").path("message").asText()).contains("does not fit");
            assertThat(daemons.sourceApi.get("/v1/vms/big").path("state").asText()).isEqualTo("paused");
            assertThat(daemons.sourceApi.get("/v1/vms/big/digest").path("vm").asText()).isEqualTo(before);
            assertThat(daemons.destinationApi.get("/v1/vms").path("vms")).isEmpty();
        }
    }
}
