package dev.ferry.orchestrator.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.orchestrator.Main;
import dev.ferry.orchestrator.TestDaemons;
import dev.ferry.orchestrator.faults.FaultInjector;
import dev.ferry.orchestrator.migration.SourcePhase;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.api.Json;
import java.util.ArrayList;
import java.util.List;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferryd ctl} against two real daemons. */
class CtlTest {
    private static TestDaemons daemons;
    @TempDir
    static Path dir;
    private static Path token;

    @BeforeAll
    static void start() throws Exception {
        daemons = new TestDaemons();
        token = Files.writeString(dir.resolve("token"), TestDaemons.TOKEN + "\n");
    }

    @AfterAll
    static void stop() {
        daemons.close();
    }

    private record Run(int status, String out, String err) {
    }

    private static Run ctl(String... args) {
        return ctl(new ByteArrayOutputStream(), args);
    }

    private static Run ctl(ByteArrayOutputStream out, String... args) {
        List<String> all = new ArrayList<>(List.of("ctl", "--api", daemons.source.http().toString(), "--token-file", token.toString()));
        all.addAll(List.of(args));
        return run(out, all);
    }

    private static Run run(ByteArrayOutputStream out, List<String> args) {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Main.run(args.toArray(String[]::new), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void createListMigrateWatchAndShow() throws Exception {
        Path vm = Files.writeString(dir.resolve("vm.json"), """
                {"id": "cli1", "memoryBytes": 16777216, "initialMemory": "random",
                 "workload": {"dirtyBytesPerSecond": 1048576, "seed": 3},
                 "devices": [{"id": "nic0", "kind": "nic"}, {"id": "gpu0", "kind": "gpu", "memoryBytes": 1048576}]}
                """);
        Run created = ctl("vm", "create", "--file", vm.toString());
        assertThat(created.status()).as(created.err()).isZero();
        assertThat(created.out()).contains("\"id\" : \"cli1\"");
        Run list = ctl("vm", "list");
        assertThat(list.out()).contains("cli1").contains("running").contains("nic0:RUNNING");

        // The migration waits in pre-copy until the progress display has shown it.
        FaultInjector.Hold precopy = daemons.sourceFaults().holdAt(SourcePhase.PRECOPY);
        ByteArrayOutputStream watched = new ByteArrayOutputStream();
        Thread releaser = new Thread(() -> {
            try {
                Awaitility.await().atMost(Duration.ofSeconds(60))
                        .until(() -> watched.toString(StandardCharsets.UTF_8).contains("precopy"));
            } finally {
                precopy.release();
            }
        }, "test-release");
        releaser.start();
        Run migrate = ctl(watched, "migrate", "cli1", "--to", daemons.destination.migration().toString(), "--watch", "--verify",
                "--channels", "2");
        releaser.join();
        assertThat(migrate.status()).as(migrate.out() + migrate.err()).isZero();
        assertThat(migrate.out()).contains("precopy").contains("completed: ok, downtime ").contains(" ms limit, verified");
        String id = migrate.out().lines().filter(l -> l.startsWith("mig-")).findFirst().orElseThrow().split(" ")[0];

        Run show = ctl("migration", "show", id);
        assertThat(show.out()).contains("\"phase\" : \"completed\"").contains("\"verified\" : true");
        assertThat(ctl("migration", "list").out()).contains(id).contains("completed");
    }

    @Test
    void migrateWithoutWatchAndCancelAnswerInText() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("cli2", true, 0, 0, TestDaemons.p2pDevices()));
        // Held in pre-copy, so that the cancel finds it running.
        FaultInjector.Hold precopy = daemons.sourceFaults().holdAt(SourcePhase.PRECOPY);
        try {
            Run started = ctl("migrate", "cli2", "--to", daemons.destination.migration().toString());
            assertThat(started.status()).as(started.err()).isZero();
            String id = started.out().split(" ")[0];
            assertThat(started.out()).startsWith("mig-").contains(" started: VM cli2 to " + daemons.destination.migration())
                    .contains("'migration watch " + id + "' follows it");
            Run cancelled = ctl("migration", "cancel", id);
            assertThat(cancelled.status()).as(cancelled.err()).isZero();
            assertThat(cancelled.out()).startsWith(id + ": cancel taken in phase ").contains("it ends as cancelled");
        } finally {
            precopy.release();
        }
        Awaitility.await().atMost(Duration.ofSeconds(30))
                .until(() -> daemons.sourceApi.get("/v1/vms/cli2").path("state").asText().equals("running"));
    }

    @Test
    void errorsAreCodesWithMessagesAndUsageIsExplained() {
        Run missing = ctl("vm", "show", "nothing");
        assertThat(missing.status()).isEqualTo(1);
        assertThat(missing.err()).startsWith("vm_not_found: ");
        Run usage = ctl("fly");
        assertThat(usage.status()).isEqualTo(2);
        assertThat(usage.err()).contains("unknown command fly").contains("usage: ferryd ctl");
        Run noDestination = ctl("migrate", "x");
        assertThat(noDestination.status()).isEqualTo(2);
        assertThat(noDestination.err()).contains("--to=HOST:PORT").contains("usage: ferryd ctl migrate");
        Run unreachable = run(new ByteArrayOutputStream(), List.of("ctl", "--api", "127.0.0.1:1", "health"));
        assertThat(unreachable.status()).isEqualTo(1);
        assertThat(unreachable.err()).isEqualTo("ferryd ctl: cannot reach the daemon at 127.0.0.1:1: connection refused\n");
    }

    @Test
    void aMissingFileIsAFileErrorAndAFailedListPrintsNoHeader() throws Exception {
        Run missing = ctl("vm", "create", "--file", dir.resolve("nowhere.json").toString());
        assertThat(missing.status()).isEqualTo(2);
        assertThat(missing.err()).isEqualTo("ferryd ctl: cannot read --file " + dir.resolve("nowhere.json")
                + ": no such file or directory\n");
        assertThat(missing.out()).isEmpty();

        Path wrong = Files.writeString(dir.resolve("wrong-token"), "not-the-token");
        Run refused = run(new ByteArrayOutputStream(), List.of("ctl", "--api", daemons.source.http().toString(), "--token-file",
                wrong.toString(), "vm", "list"));
        assertThat(refused.status()).isEqualTo(1);
        assertThat(refused.out()).as("no header before the error").isEmpty();
        assertThat(refused.err()).startsWith("unauthorized: ");

        Run json = run(new ByteArrayOutputStream(), List.of("ctl", "--api", daemons.source.http().toString(), "--token-file",
                wrong.toString(), "vm", "list", "--output", "json"));
        assertThat(json.status()).isEqualTo(1);
        assertThat(Json.mapper().readTree(json.err()).path("error").path("code").asText()).isEqualTo("unauthorized");

        Run noToken = run(new ByteArrayOutputStream(), List.of("ctl", "--api", daemons.source.http().toString(), "--token-file",
                dir.resolve("no-token").toString(), "health"));
        assertThat(noToken.status()).isEqualTo(2);
        assertThat(noToken.err()).startsWith("ferryd ctl: cannot read token file");
        for (Run run : List.of(missing, refused, json, noToken)) {
            assertThat(run.err()).doesNotContain("Exception").doesNotContain("java.");
        }
    }

    /** Every command prints the API's JSON with --output json, before or after the command. */
    @Test
    void jsonOutputOnEveryCommand() throws Exception {
        Path vm = Files.writeString(dir.resolve("json.json"), """
                {"id": "json1", "memoryBytes": 4194304, "running": false, "devices": [{"id": "nic0", "kind": "nic"}]}
                """);
        assertThat(Json.mapper().readTree(ctl("-o", "json", "vm", "create", "--file", vm.toString()).out()).path("id").asText())
                .isEqualTo("json1");
        assertThat(Json.mapper().readTree(ctl("vm", "list", "--output", "json").out()).path("vms").isArray()).isTrue();
        assertThat(Json.mapper().readTree(ctl("--output", "json", "health").out()).path("status").asText()).isEqualTo("ok");
        assertThat(Json.mapper().readTree(ctl("vm", "digest", "json1", "-o", "json").out()).has("memory")).isTrue();
        assertThat(Json.mapper().readTree(ctl("migration", "list", "-o", "json").out()).path("migrations").isArray()).isTrue();

        ByteArrayOutputStream watched = new ByteArrayOutputStream();
        Run migrate = ctl(watched, "-o", "json", "migrate", "json1", "--to", daemons.destination.migration().toString(), "--watch");
        assertThat(migrate.status()).as(migrate.err()).isZero();
        List<String> lines = migrate.out().lines().toList();
        assertThat(lines).isNotEmpty();
        for (String line : lines) {
            assertThat(Json.mapper().readTree(line).has("phase")).as(line).isTrue();
        }
        JsonNode last = Json.mapper().readTree(lines.get(lines.size() - 1));
        assertThat(last.path("phase").asText()).isEqualTo("completed");
        String id = last.path("id").asText();

        JsonNode info = Json.mapper().readTree(ctl("migration", "info", id, "-o", "json").out());
        assertThat(info.path("id").asText()).isEqualTo(id);
        assertThat(ctl("-o", "json", "vm", "delete", "json1").out()).isEmpty();
        assertThat(ctl("vm", "delete", "json1").err()).startsWith("vm_not_found: ");
    }

    @Test
    void migrationInfoSummarizesAndSetChangesARunningMigration() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("info1", true, 1L << 20, 0, TestDaemons.p2pDevices()));
        FaultInjector.Hold precopy = daemons.sourceFaults().holdAt(SourcePhase.PRECOPY);
        String id;
        try {
            id = daemons.migrate("info1", java.util.Map.of()).path("id").asText();
            assertThat(precopy.awaitReached(60, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            Run set = ctl("migration", "set", id, "--max-bandwidth", "1048576", "--downtime-limit-ms", "50");
            assertThat(set.status()).as(set.err()).isZero();
            assertThat(set.out()).isEqualTo(id + ": max bandwidth 1.0 MiB/s, downtime limit 50 ms\n");
            Run running = ctl("migration", "info", id);
            assertThat(running.out()).contains("Phase:                  precopy").contains("Time remaining:")
                    .contains("Expected downtime:").contains("Downtime limit:         50 ms")
                    .contains("Bandwidth limit:        1.0 MiB/s");
            Run refused = ctl("migration", "set", id, "--max-bandwidth", "1000");
            assertThat(refused.status()).isEqualTo(1);
            assertThat(refused.err()).startsWith("invalid_request: maxBandwidthBytesPerSecond");
            Run lifted = ctl("migration", "set", id, "--max-bandwidth", "0", "--downtime-limit-ms", "300");
            assertThat(lifted.out()).contains("max bandwidth unlimited, downtime limit 300 ms");
        } finally {
            precopy.release();
        }
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        String info = ctl("migration", "info", id).out();
        assertThat(info).contains("Migration:              " + id).contains("Role:                   source, to "
                + daemons.destination.migration()).contains("Phase:                  completed").contains("Finished:")
                .contains("Time elapsed:").contains("Data processed:").contains("Data remaining:         0 B")
                .contains("Data total:").contains("Memory total:           32.0 MiB").contains("page size 4096 bytes")
                .contains("Throughput:").contains("Dirty rate:").contains("Iterations:").contains("Auto-converge throttle:")
                .containsPattern("Downtime:\\s+\\d+ ms").contains("Downtime steps:").contains("Passes:").contains("Devices:")
                .containsPattern("gpu0 .* stop-and-copy [0-9.]+ \\w+ \\(predicted ")
                .doesNotContain("Expected downtime:").doesNotContain("Time remaining:");
    }
}
