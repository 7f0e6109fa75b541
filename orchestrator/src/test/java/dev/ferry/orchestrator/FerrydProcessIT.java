package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.orchestrator.cli.ApiClient;

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
import java.util.Map;
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

    /** A started daemon and its listening line, matched. */
    private record Daemon(Process process, Matcher listening) {
        String http() {
            return listening.group(1) + ":" + listening.group(2);
        }

        String migration() {
            return listening.group(3) + ":" + listening.group(4);
        }
    }

    /** Starts a daemon on ephemeral loopback ports and waits for its listening line. */
    private Daemon daemon(Path stdout, Path stderr, String... flags) throws Exception {
        List<String> command = java("--http", "127.0.0.1:0", "--migration", "127.0.0.1:0");
        command.addAll(List.of(flags));
        Process process = new ProcessBuilder(command).redirectOutput(stdout.toFile()).redirectError(stderr.toFile()).start();
        await().atMost(Duration.ofSeconds(60)).until(() -> !process.isAlive() || Files.readString(stdout).contains("\n"));
        String line = Files.readString(stdout).lines().findFirst().orElse("");
        Matcher m = LISTENING.matcher(line);
        if (!m.matches()) {
            process.destroyForcibly();
        }
        assertThat(m.matches()).as("listening line: %s", line).isTrue();
        return new Daemon(process, m);
    }

    @Test
    void printsItsListeningLineServesAndExitsZeroOnSigterm() throws Exception {
        Path log = dir.resolve("stderr");
        Path stdout = dir.resolve("stdout");
        Daemon daemon = daemon(stdout, log);
        Process process = daemon.process();
        try {
            Matcher m = daemon.listening();
            String line = m.group();
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

    /** DESIGN.md: a disk full for logs is not fatal. Both daemons log into /dev/full and still migrate. */
    @Test
    void aFullLogDeviceDoesNotStopAMigration() throws Exception {
        Path full = Path.of("/dev/full");
        assumeTrue(Files.isWritable(full), "no /dev/full here");
        Path tokenFile = Files.writeString(dir.resolve("token"), "full-disk-token");
        Daemon source = daemon(dir.resolve("source.out"), full, "--token-file", tokenFile.toString());
        Process from = source.process();
        Process to = null;
        try {
            Daemon destination = daemon(dir.resolve("destination.out"), full, "--token-file", tokenFile.toString());
            to = destination.process();
            ApiClient api = new ApiClient(source.http(), "full-disk-token");
            ApiClient destinationApi = new ApiClient(destination.http(), "full-disk-token");
            api.post("/v1/vms", Map.of("id", "logged", "memoryBytes", 16L << 20, "initialMemory", "random",
                    "devices", List.of(Map.of("id", "nic0", "kind", "nic"), Map.of("id", "serial0", "kind", "serial"))));
            api.post("/v1/vms/logged/pause", Map.of());
            String before = api.get("/v1/vms/logged/digest").path("vm").asText();
            String id = api.post("/v1/migrations", Map.of("vm", "logged", "destination", destination.migration()))
                    .path("id").asText();
            await().atMost(Duration.ofSeconds(60))
                    .until(() -> api.get("/v1/migrations/" + id).path("phase").asText(), phase -> phase.equals("completed"));
            assertThat(destinationApi.get("/v1/vms/logged/digest").path("vm").asText()).isEqualTo(before);

            for (Process daemon : List.of(from, to)) {
                daemon.destroy();
                assertThat(daemon.waitFor(60, TimeUnit.SECONDS)).isTrue();
                assertThat(daemon.exitValue()).as("SIGTERM exits 0 though no log line could be written").isZero();
            }
        } finally {
            from.destroyForcibly();
            if (to != null) {
                to.destroyForcibly();
            }
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

    /** Exit status, stdout and stderr of a daemon that is expected not to start. */
    private record Refused(int status, String stdout, String stderr) {
    }

    private static Refused refused(String... args) throws Exception {
        Process process = new ProcessBuilder(java(args)).start();
        byte[] stdout = process.getInputStream().readAllBytes();
        byte[] stderr = process.getErrorStream().readAllBytes();
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
        return new Refused(process.exitValue(), new String(stdout, StandardCharsets.UTF_8), new String(stderr, StandardCharsets.UTF_8));
    }

    @Test
    void aMissingTlsDirectoryOrKeyOrAPkcs1KeyIsAOneLineConfigurationError() throws Exception {
        Path missing = dir.resolve("no-such-dir");
        Refused noDir = refused("--http", "127.0.0.1:0", "--migration", "127.0.0.1:0", "--tls-dir", missing.toString());
        assertThat(noDir.status()).as(noDir.stderr()).isEqualTo(2);
        assertThat(noDir.stderr()).isEqualTo("ferryd: --tls-dir: TLS directory " + missing + " does not exist\n");
        assertThat(noDir.stdout()).isEmpty();

        io.netty.pkitesting.X509Bundle ca = TestTls.ca("Ferry CA");
        io.netty.pkitesting.X509Bundle rsa = TestTls.rsaDaemon("ferryd", ca);
        Path noKey = TestTls.directory(dir.resolve("no-key"), ca, rsa);
        Files.delete(noKey.resolve("key.pem"));
        Refused withoutKey = refused("--http", "127.0.0.1:0", "--migration", "127.0.0.1:0", "--tls-dir", noKey.toString());
        assertThat(withoutKey.status()).isEqualTo(2);
        assertThat(withoutKey.stderr()).isEqualTo("ferryd: --tls-dir: TLS file " + noKey.resolve("key.pem") + " is missing\n");

        Path pkcs1 = TestTls.directory(dir.resolve("pkcs1"), ca, rsa, TestTls.pkcs1Pem(rsa.getKeyPair().getPrivate()));
        Refused oldKey = refused("--http", "127.0.0.1:0", "--migration", "127.0.0.1:0", "--tls-dir", pkcs1.toString());
        assertThat(oldKey.status()).isEqualTo(2);
        assertThat(oldKey.stderr().lines()).as(oldKey.stderr()).singleElement().asString()
                .startsWith("ferryd: --tls-dir: TLS key " + pkcs1.resolve("key.pem") + " is a PKCS#1 RSA key")
                .contains("openssl pkcs8 -topk8 -nocrypt");
        assertThat(oldKey.stdout()).isEmpty();
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
