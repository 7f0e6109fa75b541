package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/**
 * The live numbers are true: bytes and what is left move during a pass, page bytes are never ahead of
 * the wire, the dirty rate is how fast the VM dirties memory, and the rate limit holds over every byte
 * a migration sends (F13).
 */
class LiveProgressTest {
    @AutoClose
    private final TestDaemons daemons = TestDaemons.started();

    @Test
    void progressMovesDuringTheFirstPassAndPageBytesNeverRunAheadOfTheWire() throws Exception {
        daemons.pausedVm("vm1");
        long limit = 8L << 20;
        String id = daemons.migrate("vm1", Map.of("maxBandwidthBytesPerSecond", limit)).path("id").asText();
        List<JsonNode> events = new CopyOnWriteArrayList<>();
        CompletableFuture<Void> stream = CompletableFuture.runAsync(() -> {
            try {
                daemons.sourceApi.events("/v1/migrations/" + id + "/events", (type, data) -> {
                    events.add(data);
                    return !type.equals("end");
                });
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        List<JsonNode> samples = new ArrayList<>();
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(300)).until(() -> {
            JsonNode view = daemons.sourceApi.get("/v1/migrations/" + id);
            boolean firstPass = view.path("phase").asText().equals("precopy") && view.path("passes").isEmpty();
            if (firstPass && view.path("transferredBytes").asLong() > 0) {
                samples.add(view);
            }
            return !firstPass && !samples.isEmpty();
        });
        assertThat(samples).as("samples within the first pass (about 4 s at the limit)").hasSizeGreaterThanOrEqualTo(4);
        for (int i = 1; i < samples.size(); i++) {
            JsonNode before = samples.get(i - 1);
            JsonNode now = samples.get(i);
            assertThat(now.path("transferredBytes").asLong()).as("sample %d", i).isGreaterThan(before.path("transferredBytes").asLong());
            assertThat(now.path("remainingBytes").asLong()).as("sample %d of %s", i, samples.stream()
                    .map(v -> v.path("totalTimeMs") + ":" + v.path("transferredBytes") + "/" + v.path("remainingBytes")
                            + "/" + v.path("memoryBytes").path("normalPages")).toList())
                    .isLessThan(before.path("remainingBytes").asLong());
        }
        for (JsonNode sample : samples) {
            assertThat(sample.path("memoryBytes").path("transferred").asLong()).isLessThanOrEqualTo(sample.path("transferredBytes").asLong());
            // The rate is measured over the last two seconds: once a second of it is in, it is the limit's.
            if (sample.path("totalTimeMs").asLong() >= 1_500) {
                assertThat(sample.path("throughputBytesPerSecond").asLong()).as("%s", sample)
                        .isBetween((long) (limit * 0.7), (long) (limit * 1.2));
                assertThat(sample.path("etaMs").isNumber()).isTrue();
            }
        }
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(end.path("memoryBytes").path("transferred").asLong()).isLessThanOrEqualTo(end.path("transferredBytes").asLong());
        assertThat(end.path("remainingBytes").asLong()).isZero();
        stream.get();
        List<Long> streamed = events.stream().filter(e -> e.path("phase").asText().equals("precopy"))
                .map(e -> e.path("transferredBytes").asLong()).distinct().toList();
        assertThat(streamed).as("progress events move during the pass").hasSizeGreaterThanOrEqualTo(4).isSorted();
        // A phase event says what is left as of then, not as of the last tick, when the pass was still under
        // way: a paused VM sends nothing twice, so what was sent and what is left never add up to more
        // than all that the migration sent in the end.
        long sentInAll = end.path("transferredBytes").asLong();
        List<JsonNode> afterPrecopy = events.stream().filter(e -> List.of("viommu_grace", "p2p_grace", "stop_copy", "switchover")
                .contains(e.path("phase").asText())).toList();
        assertThat(afterPrecopy).isNotEmpty().allSatisfy(e -> assertThat(e.path("transferredBytes").asLong()
                + e.path("remainingBytes").asLong()).as("%s", e).isLessThanOrEqualTo(sentInAll));
    }

    /** F13: the limit holds over everything a migration sends, device data and control included. */
    @Test
    void theRateLimitCoversEveryByteSent() throws Exception {
        daemons.sourceApi.post("/v1/vms", Map.of("id", "vm2", "memoryBytes", 8L << 20, "initialMemory", "random",
                "devices", List.of(Map.of("id", "gpu0", "kind", "gpu", "memoryBytes", 8L << 20), Map.of("id", "nic0", "kind", "nic"))));
        // The GPU's memory holds data: its own work writes it while the vCPUs ring it.
        daemons.sourceApi.post("/v1/vms/vm2/pause", Map.of());
        long limit = 4L << 20;
        String id = daemons.migrate("vm2", Map.of("maxBandwidthBytesPerSecond", limit, "channels", 2)).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        double seconds = Duration.between(Instant.parse(end.path("startedAt").asText()), Instant.parse(end.path("finishedAt").asText()))
                .toNanos() / 1e9;
        long bytes = end.path("transferredBytes").asLong();
        assertThat(bytes / seconds).as("bytes %d in %.2f s", bytes, seconds).isLessThanOrEqualTo(limit * 1.05);
        assertThat(end.path("deviceBytes").asLong()).isPositive();
    }

    /** The dirty rate is pages newly dirtied per second between two reads of the dirty logs, not the sending rate. */
    @Test
    void theDirtyRateIsHowFastTheVmDirtiesMemory() throws Exception {
        // As fast as it is sent: each pass takes about as long as the one before, and never converges.
        long dirty = 8L << 20;
        daemons.sourceApi.post("/v1/vms", Map.of("id", "busy", "memoryBytes", 64L << 20, "vcpus", 2,
                "workload", Map.of("dirtyBytesPerSecond", dirty, "seed", 5), "devices", List.of(Map.of("id", "serial0", "kind", "serial"))));
        await().atMost(Duration.ofSeconds(10)).until(() -> daemons.sourceApi.get("/v1/vms/busy").path("state").asText().equals("running"));
        String id = daemons.migrate("busy", Map.of("maxBandwidthBytesPerSecond", dirty, "downtimeLimitMs", 1,
                "maxIterations", 6, "autoConverge", false)).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("error").path("code").asText()).as(end.toString()).isEqualTo("timeout");
        int measured = 0;
        for (JsonNode pass : end.path("passes")) {
            if (pass.path("iteration").asInt() > 0 && pass.path("durationMs").asLong() >= 100) {
                measured++;
                assertThat(pass.path("dirtyRateBytesPerSecond").asLong()).as("pass %s", pass)
                        .isBetween(dirty / 2, dirty * 3 / 2);
            }
        }
        assertThat(measured).isGreaterThanOrEqualTo(2);
    }
}
