package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.api.Json;
import dev.ferry.orchestrator.faults.FaultInjector;
import dev.ferry.orchestrator.migration.SourcePhase;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** API.md's conventions: JSON in and out, one error shape, the status codes, the bearer token. */
class ApiContractTest {
    private static TestDaemons daemons;
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @BeforeAll
    static void start() throws Exception {
        daemons = new TestDaemons();
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("vm1", true, 0, 0, TestDaemons.p2pDevices()));
    }

    @AfterAll
    static void stop() {
        daemons.close();
    }

    record Reply(int status, JsonNode body, HttpResponse<String> raw) {
        String code() {
            return body.path("error").path("code").asText();
        }
    }

    private static Reply call(String method, String path, String body, String contentType, String token) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://" + daemons.source.http() + path))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (contentType != null) {
            request.header("Content-Type", contentType);
        }
        if (token != null) {
            request.header("Authorization", "Bearer " + token);
        }
        HttpResponse<String> response = HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
        JsonNode json = response.body().isEmpty() || !response.headers().firstValue("Content-Type").orElse("").startsWith("application/json")
                ? Json.mapper().nullNode() : Json.mapper().readTree(response.body());
        return new Reply(response.statusCode(), json, response);
    }

    private static Reply call(String method, String path, String body) throws Exception {
        return call(method, path, body, body == null ? null : "application/json", TestDaemons.TOKEN);
    }

    /** Every error: the one shape, a fitting status, no stack trace. */
    private static void assertError(Reply reply, int status, String code) {
        assertThat(reply.status()).as(reply.raw().body()).isEqualTo(status);
        assertThat(reply.raw().headers().firstValue("Content-Type")).hasValue("application/json; charset=utf-8");
        assertThat(reply.body().fieldNames()).toIterable().containsExactly("error");
        JsonNode error = reply.body().path("error");
        assertThat(error.fieldNames()).toIterable().containsExactly("code", "message", "details");
        assertThat(error.path("code").asText()).isEqualTo(code);
        assertThat(error.path("message").asText()).isNotBlank();
        assertThat(reply.raw().body()).doesNotContain("Exception").doesNotContain("\tat ");
    }

    @Test
    void status400ForMalformedInvalidWrongTypedAndUnknownFields() throws Exception {
        Reply cut = call("POST", "/v1/vms", "{\"id\": \"x\",");
        assertError(cut, 400, "malformed_json");
        assertThat(cut.body().path("error").path("message").asText()).as("what and where, not the parser's internals")
                .startsWith("malformed JSON: Unexpected end-of-input").contains("at line 1, column")
                .doesNotContain("StreamReadFeature").doesNotContain("Source:");
        assertError(call("POST", "/v1/vms", "{\"id\": \"x\"} {}"), 400, "malformed_json");
        assertError(call("POST", "/v1/vms", "{\"id\": \"x\", \"id\": \"y\"}"), 400, "malformed_json");
        Reply unknown = call("POST", "/v1/vms", "{\"id\": \"x\", \"colour\": \"red\"}");
        assertError(unknown, 400, "unknown_field");
        assertThat(unknown.body().path("error").path("details").path("field").asText()).isEqualTo("colour");
        Reply nested = call("POST", "/v1/vms", "{\"devices\": [{\"kind\": \"nic\", \"speed\": 10}]}");
        assertError(nested, 400, "unknown_field");
        assertThat(nested.body().path("error").path("details").path("field").asText()).isEqualTo("devices[0].speed");
        assertError(call("POST", "/v1/vms", "{\"memoryBytes\": \"268435456\"}"), 400, "invalid_field");
        assertError(call("POST", "/v1/vms", "{\"memoryBytes\": 4096.5}"), 400, "invalid_field");
        assertError(call("POST", "/v1/vms", "{\"vcpus\": true}"), 400, "invalid_field");
        assertError(call("POST", "/v1/vms", "{\"id\": 7}"), 400, "invalid_field");
        assertError(call("POST", "/v1/vms", "{\"memoryBytes\": 4097}"), 400, "invalid_request");
        assertError(call("POST", "/v1/vms", "{\"devices\": [{\"kind\": \"toaster\"}]}"), 400, "invalid_request");
        assertError(call("POST", "/v1/vms", "[]"), 400, "invalid_field");
        assertError(call("POST", "/v1/vms", null, "application/json", TestDaemons.TOKEN), 400, "missing_body");
        assertError(call("PUT", "/v1/vms/vm1/devices/nic0/state", "{\"deviceState\": \"RUNNING|FAST\"}"), 400, "invalid_field");
        assertError(call("PUT", "/v1/vms/vm1/devices/nic0/state", "{\"deviceState\": 1, \"x\": 2}"), 400, "unknown_field");
        assertError(call("PUT", "/v1/vms/vm1/devices/nic0/state", "{\"deviceState\": -1}"), 400, "invalid_field");
        assertError(call("POST", "/v1/migrations", "{\"vm\": \"vm1\", \"destination\": \"nowhere\"}"), 400, "invalid_request");
        assertError(call("POST", "/v1/migrations", "{\"vm\": \"vm1\", \"destination\": \"127.0.0.1:1\", \"channels\": 99}"),
                400, "invalid_request");
        assertError(call("GET", "/v1/migrations/none/trace?format=svg", null), 404, "migration_not_found");
    }

    @Test
    void status401WithoutTheTokenExceptHealthAndMetrics() throws Exception {
        assertError(call("GET", "/v1/vms", null, null, null), 401, "unauthorized");
        assertError(call("GET", "/v1/vms", null, null, "wrong"), 401, "unauthorized");
        assertThat(call("GET", "/v1/health", null, null, null).status()).isEqualTo(200);
        assertThat(call("GET", "/metrics", null, null, null).status()).isEqualTo(200);
    }

    @Test
    void status404ForUnknownResources() throws Exception {
        assertError(call("GET", "/v1/nothing", null), 404, "not_found");
        assertError(call("GET", "/v1/vms/ghost", null), 404, "vm_not_found");
        assertError(call("GET", "/v1/vms/vm1/devices/ghost", null), 404, "device_not_found");
        assertError(call("GET", "/v1/migrations/ghost", null), 404, "migration_not_found");
        assertError(call("DELETE", "/v1/migrations/ghost", null), 404, "migration_not_found");
    }

    @Test
    void status405WithTheAllowedMethods() throws Exception {
        Reply reply = call("PATCH", "/v1/vms/vm1", "{}");
        assertError(reply, 405, "method_not_allowed");
        assertThat(reply.raw().headers().firstValue("Allow").orElse("")).contains("GET").contains("DELETE");
        assertError(call("PUT", "/v1/health", null), 405, "method_not_allowed");
    }

    @Test
    void status409ForConflictsWithTheCurrentState() throws Exception {
        assertError(call("POST", "/v1/vms", "{\"id\": \"vm1\", \"memoryBytes\": 1048576}"), 409, "duplicate_id");
        assertError(call("GET", "/v1/vms/vm1/digest", null), 409, "vm_running");
        // D6 through the API: the device stays where it is and says so.
        assertThat(call("PUT", "/v1/vms/vm1/devices/serial0/state", "{\"deviceState\": \"SAVING\"}").status()).isEqualTo(200);
        Reply failed = call("PUT", "/v1/vms/vm1/devices/serial0/state", "{\"deviceState\": \"SAVING|RUNNING\"}");
        assertError(failed, 409, "transition_failed");
        assertThat(failed.body().path("error").path("details").path("deviceState").asText()).isEqualTo("SAVING");
        assertThat(failed.body().path("error").path("details").path("rule").asText()).isEqualTo("D6");
        assertError(call("PUT", "/v1/vms/vm1/devices/serial0/state", "{\"deviceState\": 7}"), 409, "transition_failed");
        assertThat(call("POST", "/v1/vms/vm1/devices/serial0/reset", null).body().path("deviceState").asText()).isEqualTo("RUNNING");
        // M3: a device without NDMA cannot join a VM whose P2P is active.
        assertError(call("POST", "/v1/vms/vm1/devices", "{\"id\": \"crypto0\", \"kind\": \"crypto\"}"), 409, "ndma_required");
        // M2 at creation: p2p on needs NDMA of every device.
        assertError(call("POST", "/v1/vms", "{\"id\": \"strict\", \"memoryBytes\": 4194304, \"p2p\": \"on\","
                + " \"devices\": [{\"kind\": \"crypto\"}]}"), 409, "ndma_required");
        // M4: page requests need NDMA.
        assertError(call("POST", "/v1/vms/vm1/devices", "{\"kind\": \"nic\", \"ndma\": false, \"pri\": true}"), 409, "ndma_required");
    }

    @Test
    void status409WhileMigrating() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("moving", false, 0, 0, TestDaemons.p2pDevices()));
        FaultInjector.Hold hold = daemons.sourceFaults().holdAt(SourcePhase.PRECOPY);
        String id = daemons.migrate("moving", Map.of()).path("id").asText();
        try {
            assertThat(hold.awaitReached(30, TimeUnit.SECONDS)).isTrue();
            assertError(call("DELETE", "/v1/vms/moving", null), 409, "migration_in_progress");
            assertError(call("POST", "/v1/vms/moving/resume", null), 409, "migration_in_progress");
            assertError(call("PUT", "/v1/vms/moving/devices/nic0/state", "{\"deviceState\": \"STOP\"}"), 409, "migration_in_progress");
            assertError(call("POST", "/v1/migrations", "{\"vm\": \"moving\", \"destination\": \"" + daemons.destination.migration()
                    + "\"}"), 409, "migration_in_progress");
            JsonNode listed = daemons.sourceApi.get("/v1/vms/moving");
            assertThat(listed.path("state").asText()).isEqualTo("migrating");
            assertThat(listed.path("migration").asText()).isEqualTo(id);
        } finally {
            hold.release();
        }
        assertThat(daemons.awaitEnd(id).path("phase").asText()).isEqualTo("completed");
    }

    @Test
    void status413ForBodiesOverOneMegabyte() throws Exception {
        String big = "{\"id\": \"" + "x".repeat(1 << 20) + "\"}";
        assertError(call("POST", "/v1/vms", big), 413, "body_too_large");
        assertThat(call("GET", "/v1/health", null).status()).as("the daemon serves on").isEqualTo(200);
    }

    @Test
    void status415ForBodiesThatAreNotJson() throws Exception {
        assertError(call("POST", "/v1/vms", "{\"id\": \"x\"}", "text/plain", TestDaemons.TOKEN), 415, "unsupported_media_type");
        assertError(call("POST", "/v1/vms", "id=x", "application/x-www-form-urlencoded", TestDaemons.TOKEN), 415,
                "unsupported_media_type");
    }

    @Test
    void devicesAnswerBothInterfaces() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("dev", false, 0, 0, TestDaemons.p2pDevices()));
        Reply v1 = call("PUT", "/v1/vms/dev/devices/gpu0/state", "{\"deviceState\": \"SAVING|RUNNING\"}");
        assertThat(v1.body().path("deviceState").asText()).isEqualTo("RUNNING|SAVING");
        assertThat(v1.body().path("deviceStateBits").asInt()).isEqualTo(3);
        assertThat(v1.body().path("migrationState").asText()).isEqualTo("PRE_COPY");
        assertThat(v1.body().path("pendingBytes").asLong()).isPositive();
        Reply v2 = call("PUT", "/v1/vms/dev/devices/gpu0/migration-state", "{\"migrationState\": \"STOP_COPY\"}");
        assertThat(v2.status()).isEqualTo(200);
        assertThat(v2.body().path("path")).extracting(JsonNode::asText).containsExactly("PRE_COPY_P2P", "STOP_COPY");
        assertThat(v2.body().path("device").path("deviceState").asText()).isEqualTo("SAVING");
        Reply back = call("PUT", "/v1/vms/dev/devices/gpu0/migration-state", "{\"migrationState\": \"PRE_COPY\"}");
        assertError(back, 409, "transition_failed");
        assertThat(back.body().path("error").path("details").path("rule").asText()).isEqualTo("V2");
        assertError(call("PUT", "/v1/vms/dev/devices/gpu0/migration-state", "{\"migrationState\": 8}"), 409, "transition_failed");
        assertThat(call("PUT", "/v1/vms/dev/devices/gpu0/state", "{\"deviceState\": 1}").body().path("deviceState").asText())
                .isEqualTo("RUNNING");
        assertThat(call("PUT", "/v1/vms/dev/devices/nic0/state", "{\"deviceState\": 0}").body().path("migrationState").asText())
                .isEqualTo("STOP");
        assertThat(call("PUT", "/v1/vms/dev/devices/nic0/state", "{\"deviceState\": 8}").body().path("migrationState").isNull()).isTrue();
        assertThat(call("DELETE", "/v1/vms/dev/devices/serial0", null).status()).isEqualTo(204);
        Reply plugged = call("POST", "/v1/vms/dev/devices", "{\"id\": \"serial1\", \"kind\": \"serial\"}");
        assertThat(plugged.status()).isEqualTo(201);
        assertThat(plugged.body().path("deviceState").asText()).as("D5: a hot-plugged device is RUNNING").isEqualTo("RUNNING");
        assertThat(call("DELETE", "/v1/vms/dev", null).status()).isEqualTo(204);
    }

    @Test
    void vmsAreCreatedListedPausedDigestedAndDeleted() throws Exception {
        Reply created = call("POST", "/v1/vms", "{\"memoryBytes\": 8388608, \"running\": false,"
                + " \"devices\": [{\"kind\": \"nic\"}, {\"kind\": \"gpu\", \"memoryBytes\": 65536}]}");
        assertThat(created.status()).isEqualTo(201);
        String id = created.body().path("id").asText();
        assertThat(id).startsWith("vm-");
        assertThat(created.body().path("state").asText()).isEqualTo("paused");
        assertThat(created.body().path("devices")).extracting(d -> d.path("id").asText()).containsExactly("nic0", "gpu1");
        assertThat(created.body().path("devices").get(1).path("precopy").asBoolean()).isTrue();
        assertThat(call("GET", "/v1/vms", null).body().path("vms")).extracting(v -> v.path("id").asText()).contains(id);
        JsonNode digest = call("GET", "/v1/vms/" + id + "/digest", null).body();
        assertThat(digest.fieldNames()).toIterable().containsExactly("vm", "memory", "devices");
        assertThat(digest.path("devices").fieldNames()).toIterable().containsExactlyInAnyOrder("nic0", "gpu1");
        assertThat(call("POST", "/v1/vms/" + id + "/resume", null).body().path("state").asText()).isEqualTo("running");
        assertThat(call("POST", "/v1/vms/" + id + "/pause", null).body().path("state").asText()).isEqualTo("paused");
        assertThat(call("DELETE", "/v1/vms/" + id, null).status()).isEqualTo(204);
        assertError(call("GET", "/v1/vms/" + id, null), 404, "vm_not_found");
    }

    @Test
    void healthNamesVersionAndProtocol() throws Exception {
        Reply health = call("GET", "/v1/health", null);
        assertThat(health.body().path("status").asText()).isEqualTo("ok");
        assertThat(health.body().path("version").asText()).isEqualTo(Version.current()).isNotEqualTo("unknown");
        assertThat(health.body().path("protocolVersion").asInt()).isEqualTo(2);
        assertThat(List.of(health.raw().headers().firstValue("Content-Type").orElse(""))).containsExactly("application/json; charset=utf-8");
    }
}
