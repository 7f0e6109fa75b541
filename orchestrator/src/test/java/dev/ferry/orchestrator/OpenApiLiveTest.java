package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.net.ServerSocket;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What docs/openapi.yaml says, against a live daemon with a token: the statuses it documents on
 * every operation (401, 405 with Allow, 413, 415), and the constraints it states on request bodies,
 * at their edges, read from the document itself: a value the document allows is accepted, one it
 * does not is refused with 400. (The document may be stricter than the server where the server
 * finds out later: a destination host with a space in it is a migration that fails, not a 400.)
 */
class OpenApiLiveTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String[] METHODS = {"get", "put", "post", "patch", "delete"};
    private static JsonNode openapi;
    private static Ferryd daemon;
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    private static int next;

    @BeforeAll
    static void start() throws Exception {
        openapi = new ObjectMapper(new YAMLFactory()).readTree(Path.of("docs", "openapi.yaml").toFile());
        daemon = Ferryd.start(TestDaemons.base());
    }

    @AfterAll
    static void stop() {
        daemon.close();
    }

    private static HttpResponse<String> send(String method, String path, String contentType, String body, boolean token) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://" + daemon.http() + path))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (contentType != null) {
            request.header("Content-Type", contentType);
        }
        if (token) {
            request.header("Authorization", "Bearer " + TestDaemons.TOKEN);
        }
        return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static String concrete(String template) {
        return template.replace("{vm}", "vm1").replace("{dev}", "nic0").replace("{id}", "mig-0");
    }

    private static JsonNode schema(String name) {
        return openapi.path("components").path("schemas").path(name);
    }

    /** A property's schema, through an {@code allOf} of one reference. */
    private static JsonNode property(String schema, String name) {
        JsonNode property = schema(schema).path("properties").path(name);
        JsonNode ref = property.path("allOf").path(0).path("$ref");
        return ref.isMissingNode() ? property : schema(ref.asText().substring("#/components/schemas/".length()));
    }

    private static String errorCode(HttpResponse<String> response) throws Exception {
        return JSON.readTree(response.body()).path("error").path("code").asText();
    }

    @Test
    void everyOperationAnswersTheGuardStatusesItDocuments() throws Exception {
        int operations = 0;
        for (Map.Entry<String, JsonNode> path : openapi.path("paths").properties()) {
            Set<String> allowed = new TreeSet<>();
            for (String method : METHODS) {
                JsonNode operation = path.getValue().get(method);
                if (operation == null) {
                    continue;
                }
                operations++;
                allowed.add(method.toUpperCase());
                String what = method.toUpperCase() + " " + path.getKey();
                JsonNode responses = operation.path("responses");
                boolean open = operation.has("security") && operation.path("security").isEmpty();
                assertThat(responses.has("401")).as("%s documents 401", what).isEqualTo(!open);
                for (String status : List.of("408", "413", "415", "503")) {
                    assertThat(responses.has(status)).as("%s documents %s", what, status).isTrue();
                }
                String uri = concrete(path.getKey());
                if (!open) {
                    HttpResponse<String> anonymous = send(method.toUpperCase(), uri, null, null, false);
                    assertThat(anonymous.statusCode()).as(what).isEqualTo(401);
                    assertThat(errorCode(anonymous)).isEqualTo("unauthorized");
                }
                HttpResponse<String> text = send(method.toUpperCase(), uri, "text/plain", "hello", true);
                assertThat(text.statusCode()).as(what).isEqualTo(415);
                assertThat(errorCode(text)).isEqualTo("unsupported_media_type");
                HttpResponse<String> large = send(method.toUpperCase(), uri, "application/json", "[" + " ".repeat(1 << 20) + "]", true);
                assertThat(large.statusCode()).as(what).isEqualTo(413);
            }
            // A method the path does not have: 405, the Allow header naming the documented ones.
            String missing = List.of("PATCH", "PUT", "DELETE", "POST").stream().filter(m -> !allowed.contains(m)).findFirst()
                    .orElseThrow();
            HttpResponse<String> wrong = send(missing, concrete(path.getKey()), null, null, true);
            assertThat(wrong.statusCode()).as("%s %s", missing, path.getKey()).isEqualTo(405);
            assertThat(new TreeSet<>(List.of(wrong.headers().firstValue("Allow").orElse("").split(",\\s*")))).isEqualTo(allowed);
        }
        assertThat(operations).isGreaterThan(20);
        assertThat(openapi.path("info").path("description").asText()).contains("405").contains("Allow");
    }

    /** Posts a VM (paused, so none of them runs a workload) and returns the status. */
    private static int createVm(Map<String, Object> fields) throws Exception {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("id", "edge" + next++);
        body.put("memoryBytes", 1L << 20);
        body.put("running", false);
        body.putAll(fields);
        return send("POST", "/v1/vms", "application/json", JSON.writeValueAsString(body), true).statusCode();
    }

    /** Posts a VM and checks 201 or 400; a created one is deleted again (the daemon hosts 64 at most). */
    private static void expect(Map<String, Object> fields, boolean allowed) throws Exception {
        Map<String, Object> body = new HashMap<>(fields);
        String vm = (String) body.computeIfAbsent("id", key -> "edge" + next++);
        assertThat(createVm(body)).as("%s", fields).isEqualTo(allowed ? 201 : 400);
        if (allowed) {
            assertThat(send("DELETE", "/v1/vms/" + vm, null, null, true).statusCode()).isEqualTo(204);
        }
    }

    @Test
    void theBodiesOfVmsAndDevicesAreAcceptedExactlyWithinTheStatedConstraints() throws Exception {
        Pattern id = Pattern.compile(schema("Id").path("pattern").asText());
        for (String candidate : List.of("a", "Z9", "vm_1.test-2", "a".repeat(63), "a".repeat(64), "", "-a", ".a", "a b", "a/b",
                "vé", "a:b")) {
            Map<String, Object> fields = new HashMap<>();
            fields.put("id", candidate);
            expect(fields, id.matcher(candidate).matches());
        }

        JsonNode memory = property("CreateVm", "memoryBytes");
        long min = memory.path("minimum").asLong();
        long step = memory.path("multipleOf").asLong();
        assertThat(min).isEqualTo(65536);
        assertThat(step).isEqualTo(4096);
        expect(Map.of("memoryBytes", min), true);
        expect(Map.of("memoryBytes", min - step), false);
        expect(Map.of("memoryBytes", min + step), true);
        expect(Map.of("memoryBytes", min + 1), false);
        expect(Map.of("memoryBytes", 0), false);
        // Each device takes 64 KiB of rings at the top of guest memory, as the description says.
        expect(Map.of("memoryBytes", min, "devices", List.of(Map.of("kind", "serial"))), false);
        expect(Map.of("memoryBytes", 2 * min, "devices", List.of(Map.of("kind", "serial"))), true);

        JsonNode vcpus = property("CreateVm", "vcpus");
        expect(Map.of("vcpus", vcpus.path("minimum").asInt()), true);
        expect(Map.of("vcpus", vcpus.path("maximum").asInt()), true);
        expect(Map.of("vcpus", vcpus.path("minimum").asInt() - 1), false);
        expect(Map.of("vcpus", vcpus.path("maximum").asInt() + 1), false);

        long maxRate = schema("Rate").path("maximum").asLong();
        for (String rate : List.of("dirtyBytesPerSecond", "p2pOpsPerSecond", "doorbellsPerSecond")) {
            assertThat(property("Workload", rate).path("maximum").asLong()).isEqualTo(maxRate);
            expect(Map.of("workload", Map.of(rate, 0)), true);
            expect(Map.of("workload", Map.of(rate, maxRate)), true);
            expect(Map.of("workload", Map.of(rate, maxRate + 1)), false);
            expect(Map.of("workload", Map.of(rate, -1)), false);
        }
        expect(Map.of("workload", Map.of("seed", Long.MIN_VALUE)), true);

        int maxDevices = schema("CreateVm").path("properties").path("devices").path("maxItems").asInt();
        List<Map<String, Object>> serials = new ArrayList<>();
        for (int i = 0; i < maxDevices; i++) {
            serials.add(Map.of("kind", "serial"));
        }
        expect(Map.of("memoryBytes", 8L << 20, "devices", serials), true);
        List<Map<String, Object>> tooMany = new ArrayList<>(serials);
        tooMany.add(Map.of("kind", "serial"));
        expect(Map.of("memoryBytes", 8L << 20, "devices", tooMany), false);

        JsonNode deviceMemory = property("CreateDevice", "memoryBytes");
        long deviceMin = deviceMemory.path("minimum").asLong();
        long deviceMax = deviceMemory.path("maximum").asLong();
        expect(Map.of("devices", List.of(Map.of("kind", "serial", "memoryBytes", deviceMin))), true);
        expect(Map.of("devices", List.of(Map.of("kind", "serial", "memoryBytes", deviceMin + 1))), false);
        expect(Map.of("devices", List.of(Map.of("kind", "serial", "memoryBytes", 0))), false);
        expect(Map.of("devices", List.of(Map.of("kind", "serial", "memoryBytes", deviceMax + deviceMemory.path("multipleOf").asLong()))), false);
        for (dev.ferry.device.DeviceKind kind : dev.ferry.device.DeviceKind.builtIn()) {
            assertThat(property("CreateDevice", "kind").path("description").asText()).contains(kind.label());
            expect(Map.of("memoryBytes", 2 * min, "devices", List.of(Map.of("kind", kind.label(), "memoryBytes", deviceMin))), true);
        }
        expect(Map.of("devices", List.of(Map.of("kind", "toaster"))), false);
        // Faults: the step and result names it lists are taken, any other is not, and so is an unknown field.
        for (JsonNode faultStep : schema("StateWriteFault").path("properties").path("step").path("enum")) {
            expect(Map.of("devices", List.of(Map.of("kind", "serial", "faults", Map.of("stateWrites",
                    List.of(Map.of("step", faultStep.asText(), "nth", 2, "result", "refused")))))), true);
        }
        expect(Map.of("devices", List.of(Map.of("kind", "serial", "faults", Map.of("stateWrites", List.of(Map.of("step", "thaw")))))), false);
        expect(Map.of("devices", List.of(Map.of("kind", "serial", "faults", Map.of("stateWrites",
                List.of(Map.of("step", "freeze", "nth", 0)))))), false);
        expect(Map.of("devices", List.of(Map.of("kind", "serial", "faults", Map.of("slowQuiesceMs",
                property("DeviceFaults", "slowQuiesceMs").path("maximum").asLong())))), true);
        expect(Map.of("devices", List.of(Map.of("kind", "serial", "faults", Map.of("slowQuiesceMs",
                property("DeviceFaults", "slowQuiesceMs").path("maximum").asLong() + 1)))), false);
        expect(Map.of("devices", List.of(Map.of("kind", "serial", "faults", Map.of("windowReads", Map.of("maxBytes", -1))))), false);
        expect(Map.of("devices", List.of(Map.of("kind", "serial", "faults", Map.of("windowReads", Map.of("maxBytes", 1, "failAfterBytes", -1)),
                "corruptImageAtByte", -1))), false);
        expect(Map.of("devices", List.of(Map.of("kind", "serial", "faults", Map.of("windowWrites", Map.of("maxBytes", 1, "failAfterBytes", 0),
                "corruptImageAtByte", 12, "flaky", true)))), false);
    }

    @Test
    void migrationRequestsAreAcceptedExactlyWithinTheStatedConstraints() throws Exception {
        int closed;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closed = socket.getLocalPort();
        }
        String nowhere = "127.0.0.1:" + closed;
        Pattern destination = Pattern.compile(property("StartMigration", "destination").path("pattern").asText());
        for (String candidate : List.of(nowhere, "localhost:" + closed, "[::1]:" + closed, "127.0.0.1:65535", "127.0.0.1:1",
                "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1", ":7171", "::1:7171", "127.0.0.1:x")) {
            expectMigration(Map.of("destination", candidate), destination.matcher(candidate).matches());
        }
        for (String field : List.of("downtimeLimitMs", "channels", "maxIterations", "timeoutMs", "maxBandwidthBytesPerSecond")) {
            JsonNode range = property("StartMigration", field);
            long low = range.path("minimum").asLong();
            expectMigration(Map.of("destination", nowhere, field, low), true);
            expectMigration(Map.of("destination", nowhere, field, low - 1), false);
            if (range.has("maximum")) {
                expectMigration(Map.of("destination", nowhere, field, range.path("maximum").asLong()), true);
                expectMigration(Map.of("destination", nowhere, field, range.path("maximum").asLong() + 1), false);
            }
        }
    }

    /** Starts a migration of a new VM of its own (so none waits for another) and checks 202 or 400. */
    private static void expectMigration(Map<String, Object> fields, boolean allowed) throws Exception {
        String vm = "mig" + next++;
        assertThat(createVm(Map.of("id", vm, "memoryBytes", 1L << 20))).isEqualTo(201);
        Map<String, Object> body = new LinkedHashMap<>(fields);
        body.put("vm", vm);
        int status = send("POST", "/v1/migrations", "application/json", JSON.writeValueAsString(body), true).statusCode();
        assertThat(status).as("%s", fields).isEqualTo(allowed ? 202 : 400);
    }
}
