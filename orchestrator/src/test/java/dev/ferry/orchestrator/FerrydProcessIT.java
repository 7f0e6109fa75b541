package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The packaged {@code ferryd.jar} as API.md's "Process" section describes it. */
class FerrydProcessIT {
    private static final Pattern LISTENING = Pattern.compile("ferryd listening http=(\\S+):(\\d+) migration=(\\S+):(\\d+)");

    @TempDir
    Path dir;

    private static List<String> java(String... args) {
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"), "-jar",
                System.getProperty("ferryd.jar")));
        command.addAll(List.of(args));
        return command;
    }

    @Test
    void printsItsListeningLineServesAndExitsZeroOnSigterm() throws Exception {
        Path log = dir.resolve("stderr");
        Path stdout = dir.resolve("stdout");
        Process process = new ProcessBuilder(java("--http", "127.0.0.1:0", "--migration", "127.0.0.1:0"))
                .redirectOutput(stdout.toFile()).redirectError(log.toFile()).start();
        try {
            await().atMost(Duration.ofSeconds(60)).until(() -> Files.readString(stdout).contains("\n"));
            String line = Files.readString(stdout).lines().findFirst().orElse("");
            Matcher m = LISTENING.matcher(line);
            assertThat(m.matches()).as("listening line: %s", line).isTrue();
            assertThat(m.group(1)).isEqualTo("127.0.0.1");
            assertThat(Integer.parseInt(m.group(2))).isPositive();
            assertThat(Integer.parseInt(m.group(4))).isPositive();
            HttpResponse<String> health = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + m.group(2) + "/v1/health")).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(health.body()).contains("\"status\":\"ok\"");

            process.destroy();
            assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(process.exitValue()).as("SIGTERM exits 0").isZero();
            assertThat(Files.readAllLines(stdout)).as("stdout carries only the listening line").containsExactly(line);
            assertThat(Files.readString(log)).contains("listening").contains("stopped");
        } finally {
            process.destroyForcibly();
        }
    }

    @Test
    void refusesANonLoopbackListenerWithoutAToken() throws Exception {
        Process process = new ProcessBuilder(java("--http", "0.0.0.0:0")).start();
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(process.exitValue()).isEqualTo(2);
        assertThat(new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8))
                .contains("refusing to listen on 0.0.0.0:0 without a token");
        assertThat(process.getInputStream().readAllBytes()).isEmpty();
    }

    @Test
    void theDemoMigratesBothVmsAndStopsBothDaemons() throws IOException, InterruptedException {
        Process process = new ProcessBuilder(java("demo", "--quick")).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(process.exitValue()).as(output).isZero();
        assertThat(output).contains("created VM web").contains("p2p active").contains("p2p inactive (M2)")
                .contains("both VMs run on the destination")
                .contains("source ferryd stopped by SIGTERM, exit status 0")
                .contains("destination ferryd stopped by SIGTERM, exit status 0");
    }
}
