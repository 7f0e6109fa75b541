package dev.ferry.orchestrator.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.api.Json;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Iterator;
import java.util.stream.Stream;

/** A client of one daemon's control API. */
public final class ApiClient {
    /** An error answer: its status and the API's error code and message. */
    public static final class ApiError extends IOException {
        private final int status;
        private final String code;

        ApiError(int status, String code, String message) {
            super(message);
            this.status = status;
            this.code = code;
        }

        public int status() {
            return status;
        }

        public String code() {
            return code;
        }
    }

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final String base;
    private final String token;

    /** @param api {@code HOST:PORT} of the control API */
    public ApiClient(String api, String token) {
        this.base = "http://" + api;
        this.token = token;
    }

    public JsonNode get(String path) throws IOException, InterruptedException {
        return send(request(path).GET());
    }

    public JsonNode post(String path, Object body) throws IOException, InterruptedException {
        return send(request(path).POST(body(body)).header("Content-Type", "application/json"));
    }

    public JsonNode patch(String path, Object body) throws IOException, InterruptedException {
        return send(request(path).method("PATCH", body(body)).header("Content-Type", "application/json"));
    }

    public JsonNode delete(String path) throws IOException, InterruptedException {
        return send(request(path).DELETE());
    }

    /**
     * Reads a server-sent event stream, giving each event's type and data to {@code handler} until it
     * returns false or the stream ends.
     */
    public void events(String path, EventHandler handler) throws IOException, InterruptedException {
        HttpResponse<Stream<String>> response = http.send(request(path).header("Accept", "text/event-stream").GET().build(),
                HttpResponse.BodyHandlers.ofLines());
        if (response.statusCode() >= 400) {
            String body = String.join("\n", (Iterable<String>) response.body()::iterator);
            throw error(response.statusCode(), body);
        }
        try (Stream<String> lines = response.body()) {
            Iterator<String> it = lines.iterator();
            String type = "message";
            while (it.hasNext()) {
                String line = it.next();
                if (line.startsWith("event: ")) {
                    type = line.substring(7);
                } else if (line.startsWith("data: ") && !handler.event(type, Json.mapper().readTree(line.substring(6)))) {
                    return;
                }
            }
        }
    }

    /** Receives server-sent events. */
    @FunctionalInterface
    public interface EventHandler {
        /** Returns whether to go on reading. */
        boolean event(String type, JsonNode data);
    }

    private HttpRequest.Builder request(String path) {
        HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofMinutes(10));
        if (token != null && !token.isEmpty()) {
            builder.header("Authorization", "Bearer " + token);
        }
        return builder;
    }

    private static HttpRequest.BodyPublisher body(Object body) throws IOException {
        byte[] bytes = body instanceof String text ? text.getBytes(StandardCharsets.UTF_8) : Json.mapper().writeValueAsBytes(body);
        return HttpRequest.BodyPublishers.ofByteArray(bytes);
    }

    private JsonNode send(HttpRequest.Builder request) throws IOException, InterruptedException {
        HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        if (response.statusCode() >= 400) {
            throw error(response.statusCode(), response.body());
        }
        String body = response.body();
        return body == null || body.isEmpty() ? Json.mapper().nullNode() : Json.mapper().readTree(body);
    }

    private static ApiError error(int status, String body) {
        try {
            JsonNode error = Json.mapper().readTree(body).path("error");
            return new ApiError(status, error.path("code").asText("error"), error.path("message").asText(body));
        } catch (IOException e) {
            return new ApiError(status, "error", "HTTP " + status + ": " + body);
        }
    }
}
