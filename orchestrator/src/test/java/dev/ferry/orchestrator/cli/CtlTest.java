package dev.ferry.orchestrator.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.orchestrator.TestDaemons;
import dev.ferry.orchestrator.faults.FaultInjector;
import dev.ferry.orchestrator.migration.SourcePhase;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
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
        List<String> all = new ArrayList<>(List.of("--api", daemons.source.http().toString(), "--token-file", token.toString()));
        all.addAll(List.of(args));
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Ctl.run(all, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
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
        assertThat(migrate.out()).contains("precopy").contains("completed: ok");
        String id = migrate.out().lines().filter(l -> l.startsWith("mig-")).findFirst().orElseThrow().split(" ")[0];

        Run show = ctl("migration", "show", id);
        assertThat(show.out()).contains("\"phase\" : \"completed\"").contains("\"verified\" : true");
        assertThat(ctl("migration", "list").out()).contains(id).contains("completed");
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
        assertThat(noDestination.err()).contains("--to HOST:PORT");
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Ctl.run(List.of("--api", "127.0.0.1:1", "health"), new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertThat(status).isEqualTo(1);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("cannot reach the daemon at 127.0.0.1:1");
    }
}
