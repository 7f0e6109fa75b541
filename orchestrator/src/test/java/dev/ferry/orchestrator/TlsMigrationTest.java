package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.cli.ApiClient;
import dev.ferry.orchestrator.config.FerrydConfig;
import io.netty.pkitesting.X509Bundle;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --tls-dir}: migration channels under mutual TLS. */
class TlsMigrationTest {
    @TempDir
    Path dir;

    private Path tlsDir(String name, X509Bundle ca, X509Bundle identity) throws Exception {
        return TestTls.directory(dir.resolve(name), ca, identity);
    }

    private static X509Bundle ca(String name) throws Exception {
        return TestTls.ca(name);
    }

    private static X509Bundle daemon(String name, X509Bundle ca) throws Exception {
        return TestTls.daemon(name, ca);
    }

    /** Under TLS too; a capture taken behind TLS holds the frames in the clear, the same on both sides. */
    @Test
    void migrationRunsOverMutualTls() throws Exception {
        X509Bundle ca = ca("Ferry CA");
        FerrydConfig base = TestDaemons.base();
        Path sourceCaptures = java.nio.file.Files.createDirectory(dir.resolve("source-captures"));
        Path destinationCaptures = java.nio.file.Files.createDirectory(dir.resolve("destination-captures"));
        try (Ferryd source = Ferryd.start(base.withTlsDir(tlsDir("source", ca, daemon("source", ca))).withCaptureDir(sourceCaptures));
             Ferryd destination = Ferryd.start(base.withTlsDir(tlsDir("destination", ca, daemon("destination", ca)))
                     .withCaptureDir(destinationCaptures))) {
            ApiClient api = new ApiClient(source.http().toString(), TestDaemons.TOKEN);
            api.post("/v1/vms", TestDaemons.vm("secure", true, 1L << 20, 10, TestDaemons.p2pDevices()));
            String id = api.post("/v1/migrations", Map.of("vm", "secure", "destination", destination.migration().toString(),
                    "verify", true, "capture", true)).path("id").asText();
            JsonNode end = awaitEnd(api, id);
            assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
            assertThat(end.path("verified").asBoolean()).isTrue();

            ApiClient destinationApi = new ApiClient(destination.http().toString(), TestDaemons.TOKEN);
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(30)).until(() ->
                    api.get("/v1/migrations/" + id).path("capture").path("closed").asBoolean()
                            && destinationApi.get("/v1/migrations/" + id).path("capture").path("closed").asBoolean());
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            java.io.PrintStream print = new java.io.PrintStream(out, true, java.nio.charset.StandardCharsets.UTF_8);
            int status = Main.run(new String[] {"inspect", sourceCaptures.resolve(id + "-source.fcap").toString(), "--diff",
                    destinationCaptures.resolve(id + "-destination.fcap").toString()}, print, print);
            assertThat(status).as(out.toString(java.nio.charset.StandardCharsets.UTF_8)).isZero();
        }
    }

    @Test
    void aDestinationWithACertificateFromAnotherCaIsRefused() throws Exception {
        X509Bundle ca = ca("Ferry CA");
        X509Bundle stranger = ca("Other CA");
        FerrydConfig base = TestDaemons.base();
        try (Ferryd source = Ferryd.start(base.withTlsDir(tlsDir("source", ca, daemon("source", ca))));
             Ferryd destination = Ferryd.start(base.withTlsDir(tlsDir("destination", stranger, daemon("destination", stranger))))) {
            ApiClient api = new ApiClient(source.http().toString(), TestDaemons.TOKEN);
            api.post("/v1/vms", TestDaemons.vm("secure", false, 0, 0, TestDaemons.p2pDevices()));
            JsonNode before = api.get("/v1/vms/secure/digest");
            String id = api.post("/v1/migrations", Map.of("vm", "secure", "destination", destination.migration().toString()))
                    .path("id").asText();
            JsonNode end = awaitEnd(api, id);
            assertThat(end.path("phase").asText()).isEqualTo("failed");
            assertThat(end.path("error").path("code").asText()).isIn("auth_failed", "connection_failed");
            assertThat(api.get("/v1/vms/secure").path("state").asText()).isEqualTo("paused");
            assertThat(api.get("/v1/vms/secure/digest")).isEqualTo(before);
        }
    }

    private static JsonNode awaitEnd(ApiClient api, String id) {
        JsonNode[] last = new JsonNode[1];
        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(60)).until(() -> {
            last[0] = api.get("/v1/migrations/" + id);
            String phase = last[0].path("phase").asText();
            return phase.equals("completed") || phase.equals("failed") || phase.equals("cancelled");
        });
        return last[0];
    }
}
