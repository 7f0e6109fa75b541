package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.cli.ApiClient;
import dev.ferry.orchestrator.config.ConfigLoader;
import dev.ferry.orchestrator.config.FerrydConfig;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A device kind from outside the project, loaded with --device-jar as a user would load it: the example module's
 * {@code copier}, built as a jar by the build. Two daemons that both loaded it host it, check it (F8, its data
 * format version from the SPI) and migrate it; one that did not refuses it before anything moves; a bad jar stops
 * the start with exit 2 and one line.
 */
class DeviceJarTest {
    static final Path EXAMPLE_JAR = Path.of(System.getProperty("ferry.example.jar", "../examples/device-example/target/ferry-device-example.jar"));
    static final Path EXAMPLE_TESTS_JAR = Path.of(System.getProperty("ferry.example.tests.jar",
            "../examples/device-example/target/ferry-device-example-tests.jar"));

    private TestDaemons daemons;

    @AfterEach
    void stop() {
        if (daemons != null) {
            daemons.close();
        }
    }

    static FerrydConfig withExample(FerrydConfig config) throws Exception {
        return config.withDeviceJars(List.of(EXAMPLE_JAR), null);
    }

    private static Map<String, Object> copierVm(String id, boolean running) {
        return Map.of("id", id, "memoryBytes", 16L << 20, "vcpus", 1, "initialMemory", "random", "running", running,
                "workload", Map.of("dirtyBytesPerSecond", 1L << 20, "doorbellsPerSecond", 2000, "deviceDirtyBytesPerSecond", 1L << 20,
                        "seed", 5),
                "devices", List.of(Map.of("id", "copy0", "kind", "copier"), Map.of("id", "nic0", "kind", "nic")));
    }

    @Test
    void aLoadedKindIsCreatedThroughTheApiAndMigratesBetweenTwoDaemonsThatLoadedItsJar() throws Exception {
        daemons = new TestDaemons(withExample(TestDaemons.base()));
        JsonNode vm = daemons.sourceApi.post("/v1/vms", copierVm("vm1", true));
        JsonNode copier = vm.path("devices").get(0);
        assertThat(copier.path("kind").asText()).isEqualTo("copier");
        assertThat(copier.path("precopy").asBoolean()).as("the kind's default, from its provider").isTrue();
        assertThat(copier.path("memoryBytes").asLong()).isEqualTo(256L << 10);

        String id = daemons.migrate("vm1", Map.of("verify", true, "channels", 2)).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(end.path("verified").asBoolean()).as("the frozen digests agreed").isTrue();
        JsonNode copy = daemons.destinationApi.get("/v1/vms/vm1");
        assertThat(copy.path("state").asText()).isEqualTo("running");
        assertThat(copy.path("devices").get(0).path("kind").asText()).isEqualTo("copier");
        assertThat(copy.path("devices").get(0).path("stats").path("mmioWhileStopped").asLong()).isZero();

        // And back, paused, with the digests compared by hand.
        daemons.destinationApi.post("/v1/vms/vm1/pause", Map.of());
        JsonNode digest = daemons.destinationApi.get("/v1/vms/vm1/digest");
        JsonNode back = new ApiClient(daemons.destination.http().toString(), TestDaemons.TOKEN).post("/v1/migrations",
                Map.of("vm", "vm1", "destination", daemons.source.migration().toString()));
        JsonNode backEnd = awaitEnd(daemons.destinationApi, back.path("id").asText());
        assertThat(backEnd.path("phase").asText()).as(backEnd.toString()).isEqualTo("completed");
        assertThat(daemons.sourceApi.get("/v1/vms/vm1/digest")).isEqualTo(digest);
    }

    @Test
    void aDestinationWithoutTheJarRefusesTheKindBeforeAnythingMoves() throws Exception {
        daemons = new TestDaemons(withExample(TestDaemons.base()), TestDaemons.base());
        daemons.sourceApi.post("/v1/vms", copierVm("vm1", false));
        JsonNode digest = daemons.sourceApi.get("/v1/vms/vm1/digest");
        String id = daemons.migrate("vm1", Map.of()).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).isEqualTo("failed");
        assertThat(end.path("error").path("code").asText()).isEqualTo("incompatible_device");
        assertThat(end.path("error").path("details").path("device").asText()).isEqualTo("copy0");
        assertThat(end.path("error").path("details").path("field").asText()).isEqualTo("kind");
        assertThat(end.path("error").path("details").path("reason").asText()).contains("does not know the kind 'copier'");
        daemons.assertRolledBack("vm1", digest, "paused");
    }

    @Test
    void deviceKindsNamesALoadedKindAndAHostThatDoesNotHostItRefusesIt() throws Exception {
        FerrydConfig loaded = withExample(TestDaemons.base());
        daemons = new TestDaemons(loaded.withDeviceKinds(List.of("copier", "nic")), loaded.withDeviceKinds(List.of("nic")));
        daemons.sourceApi.post("/v1/vms", copierVm("vm1", false));
        assertThatThrownBy(() -> daemons.destinationApi.post("/v1/vms", copierVm("vm2", false)))
                .isInstanceOf(ApiClient.ApiError.class).hasMessageContaining("hosts only nic");
        String id = daemons.migrate("vm1", Map.of("dryRun", true)).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("error").path("details").path("field").asText()).isEqualTo("kind");
        assertThat(end.path("error").path("details").path("reason").asText()).contains("hosts only nic");
    }

    @Test
    void aBadJarStopsTheStartWithExitTwoAndOneLineNamingIt(@TempDir Path dir) throws Exception {
        Path missing = dir.resolve("missing.jar");
        Path notAJar = Files.writeString(dir.resolve("not-a.jar"), "plain text");
        Path noKind = dir.resolve("empty.jar");
        try (var out = new java.util.jar.JarOutputStream(Files.newOutputStream(noKind))) {
            out.putNextEntry(new java.util.jar.JarEntry("README"));
            out.write("nothing here".getBytes(StandardCharsets.UTF_8));
        }
        for (Path bad : List.of(missing, notAJar, noKind, EXAMPLE_JAR)) {
            List<String> args = bad.equals(EXAMPLE_JAR)
                    ? List.of("--http", "127.0.0.1:0", "--migration", "127.0.0.1:0", "--device-jar", EXAMPLE_JAR.toString(),
                            "--device-jar", EXAMPLE_JAR.toString())
                    : List.of("--http", "127.0.0.1:0", "--migration", "127.0.0.1:0", "--device-jar", bad.toString());
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            int exit = Main.run(args.toArray(String[]::new), new PrintStream(out, true, StandardCharsets.UTF_8),
                    new PrintStream(err, true, StandardCharsets.UTF_8));
            String printed = err.toString(StandardCharsets.UTF_8);
            assertThat(exit).as(printed).isEqualTo(2);
            assertThat(printed.lines()).as(printed).hasSize(1);
            assertThat(printed).startsWith("ferryd: --device-jar ").contains(bad.toString());
            assertThat(out.toString(StandardCharsets.UTF_8)).isEmpty();
        }
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--device-jar", noKind.toString())))
                .hasMessageContaining("no device kind in it");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--device-jar", EXAMPLE_JAR.toString(), "--device-jar", EXAMPLE_JAR.toString())))
                .hasMessageContaining("given twice");
    }

    @Test
    void theConfigFileNamesDeviceJarsAndDeviceKindsMayNameTheirKinds(@TempDir Path dir) throws Exception {
        Path file = Files.writeString(dir.resolve("ferryd.json"), "{\"deviceJars\": [\"" + EXAMPLE_JAR.toAbsolutePath().toString()
                .replace("\\", "\\\\") + "\"], \"deviceKinds\": [\"copier\", \"gpu\"]}");
        FerrydConfig config = ConfigLoader.load(List.of("--config", file.toString()));
        assertThat(config.deviceKinds()).containsExactly("copier", "gpu");
        assertThat(config.kinds().names()).endsWith("copier");
        assertThat(config.deviceJars()).hasSize(1);
        FerrydConfig all = ConfigLoader.load(List.of("--device-jar", EXAMPLE_JAR.toString()));
        assertThat(all.deviceKinds()).as("every known kind by default").containsExactly("nic", "gpu", "serial", "crypto", "nvme", "copier");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--device-kinds", "copier")))
                .hasMessageContaining("unknown kind 'copier'");
    }

    private static JsonNode awaitEnd(ApiClient api, String id) {
        JsonNode[] last = new JsonNode[1];
        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(60)).pollInterval(java.time.Duration.ofMillis(20)).until(() -> {
            last[0] = api.get("/v1/migrations/" + id);
            String phase = last[0].path("phase").asText();
            return phase.equals("completed") || phase.equals("failed") || phase.equals("cancelled");
        });
        return last[0];
    }
}
