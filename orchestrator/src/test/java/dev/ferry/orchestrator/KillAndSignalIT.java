package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.cli.ApiClient;
import dev.ferry.orchestrator.faults.FaultProxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The packaged daemons as separate processes, killed with SIGKILL or stopped with SIGTERM in the
 * middle of a migration: the survivor rolls back (source) or discards its copy (destination) within
 * the keepalive timeout, and SIGTERM ends a daemon within seconds even under a tiny rate limit or with
 * a peer that stopped reading (F12).
 */
class KillAndSignalIT {
    private static final Pattern LISTENING = Pattern.compile("ferryd listening http=(\\S+) migration=(\\S+)");
    private static final String TOKEN = "kill-and-signal-token";
    /** Short keepalives, so a dead peer is found out within about a second. */
    private static final String CONFIG = "{\"keepaliveIntervalMs\": 200, \"keepaliveTimeoutMs\": 1000}";

    @TempDir
    Path dir;

    private final List<Process> started = new ArrayList<>();

    /** A daemon started from the packaged jar, its addresses and its API. */
    private record Daemon(Process process, String http, String migration, ApiClient api) {
    }

    @AfterEach
    void killWhatIsLeft() {
        started.forEach(Process::destroyForcibly);
    }

    private Daemon daemon(String name) throws Exception {
        Path token = dir.resolve("token");
        if (!Files.exists(token)) {
            Files.writeString(token, TOKEN);
        }
        Path config = Files.writeString(dir.resolve(name + ".json"), CONFIG);
        Path stdout = dir.resolve(name + ".out");
        List<String> command = List.of(ProcessHandle.current().info().command().orElse("java"), "-jar",
                System.getProperty("ferryd.jar"), "--http", "127.0.0.1:0", "--migration", "127.0.0.1:0",
                "--token-file", token.toString(), "--config", config.toString());
        Process process = new ProcessBuilder(command).redirectOutput(stdout.toFile())
                .redirectError(dir.resolve(name + ".err").toFile()).start();
        started.add(process);
        await().atMost(Duration.ofSeconds(60)).until(() -> !process.isAlive() || Files.readString(stdout).contains("\n"));
        Matcher m = LISTENING.matcher(Files.readString(stdout).lines().findFirst().orElse(""));
        assertThat(m.matches()).as("%s: %s", name, Files.readString(dir.resolve(name + ".err"))).isTrue();
        return new Daemon(process, m.group(1), m.group(2), new ApiClient(m.group(1), TOKEN));
    }

    private static JsonNode pausedVm(Daemon daemon) throws Exception {
        daemon.api().post("/v1/vms", Map.of("id", "vm1", "memoryBytes", 64L << 20, "initialMemory", "random",
                "devices", List.of(Map.of("id", "nic0", "kind", "nic"), Map.of("id", "gpu0", "kind", "gpu", "memoryBytes", 4L << 20))));
        daemon.api().post("/v1/vms/vm1/pause", Map.of());
        return daemon.api().get("/v1/vms/vm1/digest");
    }

    private static String migrate(Daemon source, String destination, long bytesPerSecond) throws Exception {
        return source.api().post("/v1/migrations", Map.of("vm", "vm1", "destination", destination,
                "maxBandwidthBytesPerSecond", bytesPerSecond)).path("id").asText();
    }

    private static void awaitTransferring(Daemon source, String id) {
        await().atMost(Duration.ofSeconds(30)).until(() ->
                source.api().get("/v1/migrations/" + id).path("memoryBytes").path("transferred").asLong() > (2L << 20));
    }

    private static JsonNode awaitEnd(ApiClient api, String id) {
        JsonNode[] last = new JsonNode[1];
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(50)).until(() -> {
            last[0] = api.get("/v1/migrations/" + id);
            return !last[0].path("finishedAt").isNull();
        });
        return last[0];
    }

    @Test
    void aDestinationKilledMidMigrationLeavesTheSourceRolledBack() throws Exception {
        Daemon source = daemon("source");
        Daemon destination = daemon("destination");
        JsonNode digest = pausedVm(source);
        String id = migrate(source, destination.migration(), 16L << 20);
        awaitTransferring(source, id);
        java.time.Instant killed = java.time.Instant.now();
        destination.process().destroyForcibly();
        assertThat(destination.process().waitFor(30, TimeUnit.SECONDS)).isTrue();

        JsonNode end = awaitEnd(source.api(), id);
        System.out.printf("measured: SIGKILL of the destination to the source rolled back: %d ms%n",
                Duration.between(killed, java.time.Instant.parse(end.path("finishedAt").asText())).toMillis());
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("failed");
        assertThat(end.path("error").path("code").asText()).isIn("connection_lost", "timeout");
        JsonNode vm = source.api().get("/v1/vms/vm1");
        assertThat(vm.path("state").asText()).isEqualTo("paused");
        vm.path("devices").forEach(device -> assertThat(device.path("deviceState").asText()).isEqualTo("RUNNING"));
        assertThat(source.api().get("/v1/vms/vm1/digest")).isEqualTo(digest);
    }

    @Test
    void aSourceKilledMidMigrationLeavesNothingOnTheDestination() throws Exception {
        Daemon source = daemon("source");
        Daemon destination = daemon("destination");
        pausedVm(source);
        String id = migrate(source, destination.migration(), 16L << 20);
        awaitTransferring(source, id);
        await().atMost(Duration.ofSeconds(10)).until(() -> !destination.api().get("/v1/vms").path("vms").isEmpty());
        java.time.Instant killed = java.time.Instant.now();
        source.process().destroyForcibly();

        JsonNode end = awaitEnd(destination.api(), id);
        System.out.printf("measured: SIGKILL of the source to the destination discarding: %d ms%n",
                Duration.between(killed, java.time.Instant.parse(end.path("finishedAt").asText())).toMillis());
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("failed");
        await().atMost(Duration.ofSeconds(10)).until(() -> destination.api().get("/v1/vms").path("vms").isEmpty());
    }

    /** F12: SIGTERM under a tiny rate limit: the migration is stopped and rolled back, the daemon exits 0 at once. */
    @Test
    void sigtermUnderATinyRateLimitEndsTheSourceWithinSeconds() throws Exception {
        Daemon source = daemon("source");
        Daemon destination = daemon("destination");
        pausedVm(source);
        String id = migrate(source, destination.migration(), 64 * 1024);
        await().atMost(Duration.ofSeconds(30)).until(() ->
                source.api().get("/v1/migrations/" + id).path("memoryBytes").path("transferred").asLong() > 0);
        long start = System.nanoTime();
        source.process().destroy();
        assertThat(source.process().waitFor(30, TimeUnit.SECONDS)).isTrue();
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        System.out.printf("measured: SIGTERM to exit 0 under a 64 KiB/s rate limit: %d ms%n", millis);
        assertThat(source.process().exitValue()).isZero();
        assertThat(millis).as("SIGTERM to exit").isLessThan(3_000);
        JsonNode end = awaitEnd(destination.api(), id);
        assertThat(end.path("error").path("code").asText()).isEqualTo("shutdown");
        await().atMost(Duration.ofSeconds(10)).until(() -> destination.api().get("/v1/vms").path("vms").isEmpty());
    }

    /** F12: SIGTERM while the destination stopped reading and sending: the daemon does not wait on it. */
    @Test
    void sigtermWithAStalledDestinationEndsTheSourceWithinSeconds() throws Exception {
        Daemon source = daemon("source");
        Daemon destination = daemon("destination");
        pausedVm(source);
        try (FaultProxy proxy = new FaultProxy(dev.ferry.orchestrator.config.Endpoint.parse(destination.migration()).resolve())) {
            proxy.add(FaultProxy.Rule.atByte(FaultProxy.Channel.data(0), FaultProxy.Direction.TO_DESTINATION,
                    FaultProxy.Action.STALL_BOTH, 2L << 20));
            migrate(source, proxy.address(), 0);
            assertThat(proxy.awaitFired(30, TimeUnit.SECONDS)).isTrue();
            long start = System.nanoTime();
            source.process().destroy();
            assertThat(source.process().waitFor(30, TimeUnit.SECONDS)).isTrue();
            long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            System.out.printf("measured: SIGTERM to exit 0 with a stalled destination: %d ms%n", millis);
            assertThat(source.process().exitValue()).isZero();
            assertThat(millis).as("SIGTERM to exit").isLessThan(3_000);
        }
    }
}
