package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.inject.AbstractModule;
import dev.ferry.orchestrator.api.Json;
import dev.ferry.orchestrator.capture.Captures;
import dev.ferry.orchestrator.cli.ApiClient;
import dev.ferry.protocol.FrameType;
import dev.ferry.protocol.capture.CaptureRecord;
import dev.ferry.protocol.capture.GatedSink;
import dev.ferry.protocol.capture.TestCaptures;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Captured migrations between two daemons: both sides capture the same session, {@code ferryd inspect}
 * decodes each (every check holds, the passes and devices are there) and {@code --diff} finds no
 * difference; a damaged byte fails the check it breaks, at its frame; capture is off unless asked for,
 * and asked for without a capture directory is refused; a capture whose file takes nothing never holds
 * the migration, and says what it dropped.
 */
class CapturedMigrationTest {
    private static final Duration WAIT = Duration.ofSeconds(30);

    @TempDir
    Path dir;
    private TestDaemons daemons;

    @AfterEach
    void stop() {
        if (daemons != null) {
            daemons.close();
        }
    }

    private static Map<String, Object> vm(String id) {
        return Map.of("id", id, "memoryBytes", 16L << 20, "vcpus", 1, "initialMemory", "random", "running", true,
                "workload", Map.of("dirtyBytesPerSecond", 2L << 20, "deviceDirtyBytesPerSecond", 1L << 20, "seed", 11),
                "devices", List.of(Map.of("id", "gpu0", "kind", "gpu", "memoryBytes", 4L << 20), Map.of("id", "nic0", "kind", "nic"),
                        Map.of("id", "serial0", "kind", "serial")));
    }

    /** What a command line printed, and its exit status. */
    private record Run(int status, String out, String err) {
        JsonNode json() throws IOException {
            return Json.mapper().readTree(out);
        }
    }

    private static Run ferryd(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private Path captures(String name) throws IOException {
        return Files.createDirectory(dir.resolve(name));
    }

    /** The migration's capture once its file is closed, as the daemon shows it. */
    private static JsonNode closedCapture(ApiClient api, String id) {
        JsonNode[] capture = new JsonNode[1];
        await().atMost(WAIT).until(() -> {
            capture[0] = api.get("/v1/migrations/" + id).path("capture");
            return capture[0].path("closed").asBoolean();
        });
        return capture[0];
    }

    @Test
    void bothSidesCaptureTheSessionAndTheInspectorDecodesAndComparesThem() throws Exception {
        Path sourceDir = captures("source");
        Path destinationDir = captures("destination");
        daemons = new TestDaemons(TestDaemons.base().withCaptureDir(sourceDir), TestDaemons.base().withCaptureDir(destinationDir));
        daemons.sourceApi.post("/v1/vms", vm("vm1"));
        JsonNode started = daemons.migrate("vm1", Map.of("channels", 2, "capture", true));
        assertThat(started.path("policy").path("capture").asBoolean()).isTrue();
        assertThat(started.path("policy").path("capturePages").asBoolean()).isFalse();
        String id = started.path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        daemons.awaitDestinationEnd(id);

        JsonNode sourceCapture = closedCapture(daemons.sourceApi, id);
        JsonNode destinationCapture = closedCapture(daemons.destinationApi, id);
        Path sourceFile = sourceDir.resolve(id + "-source.fcap");
        Path destinationFile = destinationDir.resolve(id + "-destination.fcap");
        assertThat(sourceCapture.path("file").asText()).isEqualTo(sourceFile.toString());
        assertThat(destinationCapture.path("file").asText()).isEqualTo(destinationFile.toString());
        for (JsonNode capture : List.of(sourceCapture, destinationCapture)) {
            assertThat(capture.path("frames").asLong()).isPositive();
            assertThat(capture.path("dropped").asLong()).isZero();
            assertThat(capture.path("pageData").asBoolean()).isFalse();
            assertThat(capture.path("error").isNull()).isTrue();
        }
        assertThat(Files.size(sourceFile)).isEqualTo(sourceCapture.path("bytes").asLong());

        Run text = ferryd("inspect", sourceFile.toString());
        assertThat(text.status()).as(text.out() + text.err()).isZero();
        assertThat(text.out()).contains("source side of migration " + id + " (VM vm1)").contains("ended completed")
                .contains("result: every check holds");

        // The passes over memory the source reported, and the stop-and-copy pass after them.
        int passes = end.path("passes").size();
        for (Path file : List.of(sourceFile, destinationFile)) {
            Run run = ferryd("inspect", file.toString(), "--output", "json");
            assertThat(run.status()).as(run.out()).isZero();
            JsonNode report = run.json();
            assertThat(report.path("ok").asBoolean()).isTrue();
            assertThat(report.path("capture").path("migration").asText()).isEqualTo(id);
            assertThat(report.path("vm").path("dataChannels").asInt()).isEqualTo(2);
            JsonNode iterations = report.path("iterations");
            assertThat(iterations.size()).isEqualTo(passes + 1);
            assertThat(iterations.get(0).path("pages").asLong()).as("the first pass carries every page").isEqualTo(4096);
            assertThat(iterations.get(passes).path("phase").asText()).isEqualTo("stop_copy");
            // Each run of pages goes on the channel routing gives it: the first pass, over all of memory, is on both
            // channels; a later pass carries what the guest dirtied meanwhile, which on a loaded machine can be a page
            // or two whose runs are one channel's (it failed once so in the whole suite), so it is on at most two.
            assertThat(iterations.get(0).path("channelPages").size()).isEqualTo(2);
            for (JsonNode iteration : iterations) {
                assertThat(iteration.path("iterationEndPages").asLong()).isEqualTo(iteration.path("pages").asLong());
                assertThat(iteration.path("channelPages").size()).isLessThanOrEqualTo(2);
                long carried = 0;
                for (JsonNode channel : iteration.path("channelPages")) {
                    carried += channel.asLong();
                }
                assertThat(carried).as("the channels' pages add up to the iteration's").isEqualTo(iteration.path("pages").asLong());
            }
            assertThat(iterations.get(0).path("done").asBoolean()).isTrue();
            List<String> ids = new java.util.ArrayList<>();
            for (JsonNode device : report.path("devices")) {
                ids.add(device.path("id").asText());
                assertThat(device.path("stream").path("status").asText()).as(device.toString()).isEqualTo("complete");
                assertThat(device.path("endTotal").asLong()).isEqualTo(device.path("bytes").asLong());
                assertThat(device.path("stream").path("kind").asText()).isEqualTo(device.path("kind").asText());
                assertThat(device.path("stream").path("records").path("STATE").asLong()).isEqualTo(1);
            }
            assertThat(ids).containsExactly("gpu0", "nic0", "serial0");
            assertThat(report.path("devices").get(0).path("stream").path("records").path("PAGE").asLong()).isPositive();
            assertThat(report.path("milestones").toString()).contains("VM_DESCRIPTION").contains("COMMIT").contains("CONFIRM");
        }

        Run diff = ferryd("inspect", sourceFile.toString(), "--diff", destinationFile.toString());
        assertThat(diff.status()).as(diff.out()).isZero();
        assertThat(diff.out()).contains("the same migration, seen from its source and its destination").contains("result: no difference")
                .contains("same: data#1 from source").contains("same: device gpu0");
    }

    /**
     * With page data, both sides hold every page's bytes, each checked against its own CRC: the source's
     * as the frame went to the socket, the destination's as they landed in guest memory. A paused VM
     * changes no page while it is sent, so the two captures are the same to the byte.
     */
    @Test
    void withPageDataBothSidesHoldTheSamePagesEachCheckedAgainstItsCrc() throws Exception {
        Path sourceDir = captures("source");
        Path destinationDir = captures("destination");
        daemons = new TestDaemons(TestDaemons.base().withCaptureDir(sourceDir), TestDaemons.base().withCaptureDir(destinationDir));
        Map<String, Object> paused = new java.util.HashMap<>(vm("vm1"));
        paused.put("running", false);
        daemons.sourceApi.post("/v1/vms", paused);
        String id = daemons.migrate("vm1", Map.of("channels", 2, "capture", true, "capturePages", true)).path("id").asText();
        assertThat(daemons.awaitEnd(id).path("phase").asText()).isEqualTo("completed");
        daemons.awaitDestinationEnd(id);
        assertThat(closedCapture(daemons.sourceApi, id).path("pageData").asBoolean()).isTrue();
        assertThat(closedCapture(daemons.destinationApi, id).path("pageData").asBoolean()).isTrue();
        Path sourceFile = sourceDir.resolve(id + "-source.fcap");
        Path destinationFile = destinationDir.resolve(id + "-destination.fcap");
        assertThat(Files.size(sourceFile)).as("every page's bytes are in").isGreaterThan(16L << 20);
        Run run = ferryd("inspect", destinationFile.toString(), "-o", "json");
        assertThat(run.status()).as(run.out()).isZero();
        for (JsonNode iteration : run.json().path("iterations")) {
            assertThat(iteration.path("tornPages").isNumber()).isTrue();
            assertThat(iteration.path("tornPages").asLong()).isZero();
        }
        Run diff = ferryd("inspect", sourceFile.toString(), "--diff", destinationFile.toString());
        assertThat(diff.status()).as(diff.out()).isZero();
    }

    @Test
    void aDamagedCaptureFailsTheCheckItBreaksNamingTheFrame() throws Exception {
        Path captures = captures("captures");
        daemons = new TestDaemons(TestDaemons.base().withCaptureDir(captures), TestDaemons.base());
        daemons.sourceApi.post("/v1/vms", vm("vm1"));
        Path token = Files.writeString(dir.resolve("token"), TestDaemons.TOKEN);
        String api = daemons.source.http().toString();
        Run migrate = ferryd("ctl", "--api", api, "--token-file", token.toString(), "-o", "json", "migrate", "vm1", "--to",
                daemons.destination.migration().toString(), "--capture");
        assertThat(migrate.status()).as(migrate.err()).isZero();
        String id = migrate.json().path("id").asText();
        assertThat(daemons.awaitEnd(id).path("phase").asText()).isEqualTo("completed");
        closedCapture(daemons.sourceApi, id);
        Path file = captures.resolve(id + "-source.fcap");
        assertThat(ferryd("ctl", "--api", api, "--token-file", token.toString(), "migration", "info", id).out())
                .containsPattern("Capture: +" + java.util.regex.Pattern.quote(file.toString()) + ": \\d+ frames, .*, closed");
        assertThat(ferryd("inspect", file.toString()).status()).isZero();

        CaptureRecord.FrameRecord chunk = TestCaptures.first(file, FrameType.DEVICE_DATA);
        TestCaptures.damage(file, chunk, 10 + 3);
        Run damaged = ferryd("inspect", file.toString());
        assertThat(damaged.status()).as(damaged.out()).isEqualTo(1);
        assertThat(damaged.out()).contains("FAIL checksum: data#0 sent frame").contains("file offset " + chunk.offset())
                .contains("DEVICE_DATA frame").contains("result: 1 check failed");
    }

    /** A migration cancelled midway: both files close, say so, and hold the ABORT that ended the session. */
    @Test
    void aCancelledMigrationsCapturesCloseAndHoldItsAbort() throws Exception {
        Path sourceDir = captures("source");
        Path destinationDir = captures("destination");
        daemons = new TestDaemons(TestDaemons.base().withCaptureDir(sourceDir), TestDaemons.base().withCaptureDir(destinationDir));
        daemons.sourceApi.post("/v1/vms", vm("vm1"));
        String id = daemons.migrate("vm1", Map.of("capture", true, "maxBandwidthBytesPerSecond", 1L << 20)).path("id").asText();
        await().atMost(WAIT).until(() -> daemons.sourceApi.get("/v1/migrations/" + id).path("phase").asText().equals("precopy"));
        daemons.sourceApi.delete("/v1/migrations/" + id);
        assertThat(daemons.awaitEnd(id).path("phase").asText()).isEqualTo("cancelled");
        daemons.awaitDestinationEnd(id);
        closedCapture(daemons.sourceApi, id);
        closedCapture(daemons.destinationApi, id);
        for (Path file : List.of(sourceDir.resolve(id + "-source.fcap"), destinationDir.resolve(id + "-destination.fcap"))) {
            Run run = ferryd("inspect", file.toString(), "-o", "json");
            JsonNode report = run.json();
            assertThat(run.status()).as("a cancel breaks no rule of the protocol: %s", run.out()).isZero();
            assertThat(report.path("capture").path("outcome").asText()).as(run.out()).isEqualTo("cancelled");
            assertThat(report.path("milestones").toString()).contains("ABORT cancelled");
        }
    }

    @Test
    void captureIsOffUnlessAskedForAndAskedForWithoutACaptureDirectoryIsRefused() throws Exception {
        Path captures = captures("captures");
        daemons = new TestDaemons(TestDaemons.base().withCaptureDir(captures), TestDaemons.base());
        daemons.sourceApi.post("/v1/vms", vm("vm1"));
        String id = daemons.migrate("vm1", Map.of()).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).isEqualTo("completed");
        assertThat(end.path("capture").isNull()).isTrue();
        assertThat(end.path("policy").path("capture").asBoolean()).isFalse();
        try (Stream<Path> files = Files.list(captures)) {
            assertThat(files).isEmpty();
        }

        // The destination has no capture directory: it takes the migration back without capturing.
        daemons.destinationApi.post("/v1/vms", vm("vm2"));
        assertThatThrownBy(() -> daemons.destinationApi.post("/v1/migrations", Map.of("vm", "vm2", "destination",
                daemons.source.migration().toString(), "capture", true)))
                .isInstanceOfSatisfying(ApiClient.ApiError.class, e -> {
                    assertThat(e.status()).isEqualTo(400);
                    assertThat(e.code()).isEqualTo("invalid_request");
                    assertThat(e.getMessage()).contains("--capture-dir");
                });
        assertThatThrownBy(() -> daemons.sourceApi.post("/v1/migrations", Map.of("vm", "vm1", "destination",
                daemons.destination.migration().toString(), "capturePages", true)))
                .isInstanceOfSatisfying(ApiClient.ApiError.class, e -> assertThat(e.getMessage()).contains("capturePages needs capture"));
        assertThat(daemons.destinationApi.get("/v1/migrations").path("migrations").toString()).doesNotContain("\"role\":\"source\"");
    }

    /**
     * The source's capture goes to a sink that takes nothing until the test opens it, with room for 256
     * KiB of frames: the writer thread waits in the sink, the queue fills, and frames are dropped, never
     * waited for. The migration completes meanwhile; once the sink opens, the file is written and closed,
     * its GAP records explain the missing frames and inspect says what was dropped.
     */
    @Test
    void aCaptureWhoseFileTakesNothingNeverHoldsTheMigrationAndSaysWhatItDropped() throws Exception {
        Path captures = captures("captures");
        CountDownLatch open = new CountDownLatch(1);
        Captures.Sink gated = file -> new GatedSink(Captures.Sink.FILES.create(file), open);
        AbstractModule slowCapture = new AbstractModule() {
            @Override
            protected void configure() {
                bind(Captures.class).toInstance(new Captures(captures, gated, "test", 256 << 10));
            }
        };
        daemons = new TestDaemons(TestDaemons.base().withCaptureDir(captures), TestDaemons.base(), List.of(slowCapture));
        try {
            daemons.sourceApi.post("/v1/vms", vm("vm1"));
            String id = daemons.migrate("vm1", Map.of("capture", true, "channels", 2)).path("id").asText();
            JsonNode end = daemons.awaitEnd(id);
            assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
            JsonNode held = end.path("capture");
            assertThat(held.path("dropped").asLong()).as(held.toString()).isPositive();
            assertThat(held.path("bytes").asLong()).as("the sink took nothing yet").isZero();
            assertThat(held.path("closed").asBoolean()).isFalse();

            open.countDown();
            JsonNode capture = closedCapture(daemons.sourceApi, id);
            assertThat(capture.path("error").isNull()).isTrue();
            Run run = ferryd("inspect", captures.resolve(id + "-source.fcap").toString(), "--output", "json");
            assertThat(run.status()).as(run.out()).isZero();
            JsonNode report = run.json();
            assertThat(report.path("totals").path("droppedFrames").asLong()).isEqualTo(capture.path("dropped").asLong());
            assertThat(report.path("notes").toString()).contains("frames were not captured");
            assertThat(report.path("capture").path("outcome").asText()).isEqualTo("completed");
        } finally {
            open.countDown();
        }
    }

    @Test
    void inspectsUsageErrorsExitTwoAndAFileThatIsNotACaptureFailsItsCheck() throws Exception {
        Run missing = ferryd("inspect", dir.resolve("nothing.fcap").toString());
        assertThat(missing.status()).isEqualTo(2);
        assertThat(missing.err()).contains("no such file");
        assertThat(ferryd("inspect").status()).isEqualTo(2);
        Path text = Files.writeString(dir.resolve("notes.txt"), "not a capture at all, just some words in a file\n");
        assertThat(ferryd("inspect", text.toString(), "--output", "yaml").status()).isEqualTo(2);
        Run notCapture = ferryd("inspect", text.toString());
        assertThat(notCapture.status()).isEqualTo(1);
        assertThat(notCapture.out()).contains("FAIL capture: file offset 0: not a Ferry capture");
    }
}
