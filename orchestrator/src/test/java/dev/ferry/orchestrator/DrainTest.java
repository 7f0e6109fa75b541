package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.api.Json;
import dev.ferry.orchestrator.cli.ApiClient;
import dev.ferry.orchestrator.faults.FaultInjector;
import dev.ferry.orchestrator.migration.SourcePhase;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Host drain between two real daemons: every VM migrated, a few at a time, with a summary; cancellable. */
class DrainTest {
    private static final Duration LIMIT = Duration.ofSeconds(60);
    @AutoClose
    private final TestDaemons daemons = TestDaemons.started();

    private void smallVm(String id) throws Exception {
        daemons.sourceApi.post("/v1/vms", Map.of("id", id, "memoryBytes", 4L << 20, "running", false, "initialMemory", "random",
                "devices", List.of(Map.of("id", "nic0", "kind", "nic"))));
    }

    private JsonNode drain() throws Exception {
        return daemons.sourceApi.get("/v1/drain");
    }

    private JsonNode awaitDrain(String state) {
        JsonNode[] last = new JsonNode[1];
        await().atMost(LIMIT).pollInterval(Duration.ofMillis(20)).until(() -> {
            last[0] = drain();
            return last[0].path("state").asText().equals(state);
        });
        return last[0];
    }

    private static String code(ThrowableCall call) {
        try {
            call.run();
        } catch (ApiClient.ApiError e) {
            return e.status() + " " + e.code();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        throw new AssertionError("no error");
    }

    @FunctionalInterface
    private interface ThrowableCall {
        void run() throws Exception;
    }

    @Test
    void everyVmIsMigratedAtMostMaxParallelAtOnceTheNextStartingAsOneEnds() throws Exception {
        assertThat(code(this::drain)).isEqualTo("404 no_drain");
        assertThat(code(() -> daemons.sourceApi.delete("/v1/drain"))).isEqualTo("404 no_drain");
        // A VM migrated away before is not the drain's.
        smallVm("gone");
        String gone = daemons.migrate("gone", Map.of()).path("id").asText();
        assertThat(daemons.awaitEnd(gone).path("phase").asText()).isEqualTo("completed");
        for (String vm : List.of("d1", "d2", "d3")) {
            smallVm(vm);
        }
        String destination = daemons.destination.migration().toString();

        // The first migration to reach pre-copy waits there: the other two must go through the second slot.
        FaultInjector.Hold held = daemons.sourceFaults().holdAt(SourcePhase.PRECOPY);
        JsonNode started;
        try {
            started = daemons.sourceApi.post("/v1/drain", Map.of("destination", destination, "maxParallel", 2));
            assertThat(started.path("id").asText()).startsWith("drain-");
            assertThat(started.path("destination").asText()).isEqualTo(destination);
            assertThat(started.path("maxParallel").asInt()).isEqualTo(2);
            assertThat(started.path("state").asText()).isEqualTo("running");
            assertThat(started.path("vms").findValuesAsText("vm")).containsExactly("d1", "d2", "d3");
            assertThat(started.path("summary").path("total").asInt()).isEqualTo(3);
            assertThat(started.path("summary").path("migrating").asInt()).isEqualTo(2);
            assertThat(started.path("summary").path("pending").asInt()).isEqualTo(1);
            assertThat(code(() -> daemons.sourceApi.post("/v1/drain", Map.of("destination", destination))))
                    .isEqualTo("409 drain_in_progress");

            assertThat(held.awaitReached(60, TimeUnit.SECONDS)).isTrue();
            JsonNode whileHeld = awaitDrainCounts(2);
            assertThat(whileHeld.path("summary").path("migrating").asInt()).isEqualTo(1);
            assertThat(whileHeld.path("state").asText()).isEqualTo("running");
            assertThat(whileHeld.path("vms").findValuesAsText("migration")).contains(held.migrationId());
        } finally {
            held.release();
        }

        JsonNode done = awaitDrain("completed");
        assertThat(done.path("summary").path("completed").asInt()).isEqualTo(3);
        assertThat(done.path("summary").path("failed").asInt()).isZero();
        assertThat(done.path("finishedAt").isNull()).isFalse();
        assertThat(done.path("remainingBytes").asLong()).isZero();
        assertThat(done.path("transferredBytes").asLong()).isGreaterThan(3 * (4L << 20));
        List<long[]> intervals = new ArrayList<>();
        for (JsonNode vm : done.path("vms")) {
            assertThat(vm.path("state").asText()).isEqualTo("completed");
            assertThat(vm.path("phase").asText()).isEqualTo("completed");
            assertThat(daemons.sourceApi.get("/v1/vms/" + vm.path("vm").asText()).path("state").asText()).isEqualTo("migrated");
            assertThat(daemons.destinationApi.get("/v1/vms/" + vm.path("vm").asText()).path("state").asText()).isEqualTo("paused");
            intervals.add(new long[] {micros(vm.path("startedAt")), micros(vm.path("finishedAt"))});
        }
        // Never more than two at once: at each start, count the migrations under way.
        for (long[] interval : intervals) {
            long at = interval[0];
            assertThat(intervals.stream().filter(other -> other[0] <= at && at < other[1]).count()).isLessThanOrEqualTo(2);
        }
        // The last drain stays visible; it cannot be cancelled once ended.
        assertThat(drain().path("id").asText()).isEqualTo(started.path("id").asText());
        assertThat(code(() -> daemons.sourceApi.delete("/v1/drain"))).isEqualTo("409 drain_finished");
        // Nothing left to drain: a new drain ends at once.
        JsonNode empty = daemons.sourceApi.post("/v1/drain", Map.of("destination", destination));
        assertThat(empty.path("state").asText()).isEqualTo("completed");
        assertThat(empty.path("summary").path("total").asInt()).isZero();
        assertThat(empty.path("maxParallel").asInt()).as("the default").isEqualTo(2);
    }

    private JsonNode awaitDrainCounts(int completed) {
        JsonNode[] last = new JsonNode[1];
        await().atMost(LIMIT).pollInterval(Duration.ofMillis(20)).until(() -> {
            last[0] = drain();
            return last[0].path("summary").path("completed").asInt() == completed;
        });
        return last[0];
    }

    private static long micros(JsonNode instant) {
        Instant at = Instant.parse(instant.asText());
        return TimeUnit.SECONDS.toMicros(at.getEpochSecond()) + TimeUnit.NANOSECONDS.toMicros(at.getNano());
    }

    @Test
    void aCancelledDrainStartsNoMoreAndRollsBackTheRunningOnes() throws Exception {
        smallVm("c1");
        smallVm("c2");
        JsonNode digest = daemons.sourceApi.get("/v1/vms/c1/digest");
        FaultInjector.Hold held = daemons.sourceFaults().holdAt(SourcePhase.PRECOPY);
        JsonNode cancelling;
        try {
            daemons.sourceApi.post("/v1/drain", Map.of("destination", daemons.destination.migration().toString(), "maxParallel", 1));
            assertThat(held.awaitReached(60, TimeUnit.SECONDS)).isTrue();
            cancelling = daemons.sourceApi.delete("/v1/drain");
            assertThat(cancelling.path("state").asText()).isIn("cancelling", "cancelled");
        } finally {
            held.release();
        }
        JsonNode cancelled = awaitDrain("cancelled");
        assertThat(cancelled.path("summary").path("cancelled").asInt()).isEqualTo(2);
        JsonNode first = cancelled.path("vms").get(0);
        JsonNode second = cancelled.path("vms").get(1);
        assertThat(first.path("migration").asText()).isEqualTo(held.migrationId());
        assertThat(first.path("error").path("code").asText()).isEqualTo("cancelled");
        assertThat(second.path("migration").isNull()).as("never started").isTrue();
        daemons.assertRolledBack("c1", digest, "paused");
        assertThat(daemons.sourceApi.get("/v1/vms/c2").path("state").asText()).isEqualTo("paused");
        assertThat(code(() -> daemons.sourceApi.delete("/v1/drain"))).isEqualTo("409 drain_finished");
    }

    @Test
    void badRequestsAreRefused() throws Exception {
        for (Map<String, Object> body : List.<Map<String, Object>>of(Map.of(), Map.of("destination", "nowhere"),
                Map.of("destination", "127.0.0.1:0"), Map.of("destination", "127.0.0.1:7171", "maxParallel", 0),
                Map.of("destination", "127.0.0.1:7171", "maxParallel", 17))) {
            assertThat(code(() -> daemons.sourceApi.post("/v1/drain", body))).as("%s", body).isEqualTo("400 invalid_request");
        }
        assertThat(code(() -> daemons.sourceApi.post("/v1/drain", Map.of("destination", "127.0.0.1:7171", "parallel", 2))))
                .isEqualTo("400 unknown_field");
        assertThat(code(() -> daemons.sourceApi.post("/v1/drain", Map.of("destination", "127.0.0.1:7171", "maxParallel", "two"))))
                .isEqualTo("400 invalid_field");
    }

    /** {@code ferryctl drain --to ... --watch} follows the drain to its end; {@code drain show} prints it. */
    @Test
    void theCommandLineDrainsAndWatches(@TempDir Path dir) throws Exception {
        smallVm("w1");
        smallVm("w2");
        Path token = Files.writeString(dir.resolve("token"), TestDaemons.TOKEN);
        List<String> base = List.of("ctl", "--api", daemons.source.http().toString(), "--token-file", token.toString());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        List<String> args = new ArrayList<>(base);
        args.addAll(List.of("drain", "--to", daemons.destination.migration().toString(), "--max-parallel", "2", "--watch"));
        int status = Main.run(args.toArray(String[]::new), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        String text = out.toString(StandardCharsets.UTF_8);
        assertThat(status).as(text + err).isZero();
        assertThat(text).contains("at most 2 at once: running").contains("at most 2 at once: completed")
                .contains("2 VMs: 2 completed, 0 failed, 0 cancelled, 0 migrating, 0 pending");

        out.reset();
        List<String> show = new ArrayList<>(base);
        show.addAll(List.of("drain", "show", "-o", "json"));
        assertThat(Main.run(show.toArray(String[]::new), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8))).isZero();
        JsonNode drain = Json.mapper().readTree(out.toString(StandardCharsets.UTF_8));
        Set<String> vms = new HashSet<>(drain.path("vms").findValuesAsText("vm"));
        assertThat(vms).containsExactlyInAnyOrder("w1", "w2");
        assertThat(drain.path("state").asText()).isEqualTo("completed");
        assertThatThrownBy(() -> daemons.sourceApi.delete("/v1/drain")).isInstanceOf(ApiClient.ApiError.class);
    }
}
