package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.orchestrator.faults.FaultInjector;
import dev.ferry.orchestrator.migration.SourcePhase;
import java.io.File;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The live page at {@code /ui/} in a real browser (Debian's headless Chromium): loaded while a
 * migration is held in its vIOMMU grace phase, after its script ran against the API, the page shows
 * the VM as migrating, the migration in that phase with its progress, and the timeline of its phases
 * and of every device's states from the trace. Without the token it shows only the token form: the
 * page's files are served open, the data is not.
 */
class UiPageTest {
    private static final String INSTALL = "apt-get install chromium (Debian's package)";
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    private static TestDaemons daemons;

    @TempDir
    static Path dir;

    @BeforeAll
    static void start() throws Exception {
        daemons = new TestDaemons();
    }

    @AfterAll
    static void stop() {
        daemons.close();
    }

    /**
     * The page's DOM once its script has run: Chromium loads it with a virtual-time budget (timers
     * run, and virtual time waits for the page's requests to the daemon) and prints the DOM.
     */
    private static String dom(String url) throws Exception {
        Path chromium = ExternalTool.require("chromium", INSTALL);
        Path profile = Files.createTempDirectory(dir, "profile");
        Path out = dir.resolve("dom-" + System.nanoTime() + ".html");
        Path log = dir.resolve("chromium-" + System.nanoTime() + ".log");
        List<String> command = new ArrayList<>(List.of(chromium.toString(), "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--user-data-dir=" + profile, "--virtual-time-budget=4000", "--dump-dom", url));
        Process process = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
            throw new AssertionError("chromium did not end within 120 s: " + Files.readString(log));
        }
        assertThat(process.exitValue()).as(Files.readString(log)).isZero();
        return Files.readString(out, StandardCharsets.UTF_8);
    }

    private static String page(String fragment) {
        return "http://" + daemons.source.http() + "/ui/" + fragment;
    }

    /** The inner markup of the timeline row of a device. */
    private static String deviceRow(String dom, String device) {
        Matcher row = Pattern.compile("<g data-track=\"device\" data-device=\"" + Pattern.quote(device) + "\">(.*?)</g>",
                Pattern.DOTALL).matcher(dom);
        assertThat(row.find()).as("timeline row of %s in %s", device, dom).isTrue();
        return row.group(1);
    }

    @Test
    void duringAMigrationThePageShowsTheVmTheMigrationAndItsTimeline() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("ui1", true, 1L << 20, 0, TestDaemons.p2pDevices()));
        FaultInjector.Hold grace = daemons.sourceFaults().holdAt(SourcePhase.VIOMMU_GRACE);
        String id;
        String dom;
        try {
            id = daemons.migrate("ui1", Map.of()).path("id").asText();
            assertThat(grace.awaitReached(60, TimeUnit.SECONDS)).isTrue();
            dom = dom(page("#token=" + TestDaemons.TOKEN + "&migration=" + id));
        } finally {
            grace.release();
        }
        assertThat(dom).contains("<body data-loaded=\"true\">");
        assertThat(dom).containsPattern("<main id=\"content\">").containsPattern("<section id=\"login\" hidden=\"\">");
        assertThat(dom).contains("<tr data-vm=\"ui1\" data-state=\"migrating\">");
        Matcher migration = Pattern.compile("<tr data-migration=\"" + id + "\" data-phase=\"viommu_grace\" data-progress=\"([0-9.]+)\"")
                .matcher(dom);
        assertThat(migration.find()).as(dom).isTrue();
        assertThat(Double.parseDouble(migration.group(1))).isGreaterThan(50).isLessThanOrEqualTo(100);
        assertThat(dom).contains("<span id=\"timeline-id\">" + id + " (source of ui1, viommu_grace)</span>");

        Matcher phases = Pattern.compile("<g data-track=\"phases\">(.*?)</g>", Pattern.DOTALL).matcher(dom);
        assertThat(phases.find()).isTrue();
        assertThat(phases.group(1)).contains("data-state=\"setup\"").contains("data-state=\"precopy\"")
                .contains("data-state=\"viommu_grace\"");
        // Pre-copy put every device in RUNNING|SAVING (S2); the timeline shows both states of each.
        for (String device : List.of("nic0", "gpu0", "serial0", "nvme0")) {
            String row = deviceRow(dom, device);
            assertThat(row).as(device).contains("data-state=\"RUNNING\"").contains("data-state=\"RUNNING|SAVING\"");
        }
        assertThat(daemons.awaitEnd(id).path("phase").asText()).isEqualTo("completed");
    }

    @Test
    void withoutTheTokenThePageAsksForItAndShowsNoData() throws Exception {
        daemons.sourceApi.post("/v1/vms", Map.of("id", "secret-vm", "memoryBytes", 1L << 20, "running", false));
        String dom = dom(page(""));
        assertThat(dom).contains("<section id=\"login\">").contains("<main id=\"content\" hidden=\"\">")
                .contains("needs the token").doesNotContain("secret-vm").doesNotContain("data-vm=");

        // The files themselves are open, and hold nothing of the daemon's.
        for (Map.Entry<String, String> file : Map.of("/ui/", "text/html", "/ui", "text/html", "/ui/app.js", "text/javascript",
                "/ui/app.css", "text/css")
                .entrySet()) {
            HttpResponse<String> response = HTTP.send(HttpRequest.newBuilder(URI.create("http://" + daemons.source.http()
                    + file.getKey())).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(response.statusCode()).isEqualTo(200);
            assertThat(response.headers().firstValue("Content-Type").orElse("")).startsWith(file.getValue());
            assertThat(response.body()).doesNotContain("secret-vm");
        }
        HttpResponse<String> vms = HTTP.send(HttpRequest.newBuilder(URI.create("http://" + daemons.source.http() + "/v1/vms")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(vms.statusCode()).isEqualTo(401);
    }
}
