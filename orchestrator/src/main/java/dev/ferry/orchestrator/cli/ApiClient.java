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
        private final JsonNode body;

        ApiError(int status, String code, String message, JsonNode body) {
            super(message);
            this.status = status;
            this.code = code;
            this.body = body;
        }

        /** The answer's body as sent: the API's error object, or a text node for anything else. */
        public JsonNode body() {
            return body;
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
     * returns false. A stream that breaks before that is opened again with {@code Last-Event-ID} (the
     * daemon then goes on after that event, see docs/api.md), after the pause the server's
     * {@code retry:} line asked for, at most {@value #RECONNECTS} times in a row.
     */
    public void events(String path, EventHandler handler) throws IOException, InterruptedException {
        String lastId = null;
        long retryMillis = 1000;
        int failures = 0;
        while (true) {
            HttpRequest.Builder request = request(path).header("Accept", "text/event-stream").GET();
            if (lastId != null) {
                request.header("Last-Event-ID", lastId);
            }
            HttpResponse<Stream<String>> response;
            try {
                response = http.send(request.build(), HttpResponse.BodyHandlers.ofLines());
            } catch (IOException e) {
                if (lastId == null || ++failures > RECONNECTS) {
                    throw e;
                }
                Thread.sleep(retryMillis);
                continue;
            }
            if (response.statusCode() == 204) {
                // The server says there is nothing more to follow.
                response.body().close();
                return;
            }
            if (response.statusCode() >= 400) {
                String body = String.join("\n", (Iterable<String>) response.body()::iterator);
                throw error(response.statusCode(), body);
            }
            try (Stream<String> lines = response.body()) {
                Iterator<String> it = lines.iterator();
                String type = "message";
                String data = null;
                String id = null;
                while (it.hasNext()) {
                    String line = it.next();
                    if (line.startsWith("event:")) {
                        type = field(line);
                    } else if (line.startsWith("data:")) {
                        data = field(line);
                    } else if (line.startsWith("id:")) {
                        id = field(line);
                    } else if (line.startsWith("retry:")) {
                        retryMillis = Long.parseLong(field(line));
                    } else if (line.isEmpty() && data != null) {
                        // A blank line ends an event.
                        lastId = id != null ? id : lastId;
                        failures = 0;
                        if (!handler.event(type, Json.mapper().readTree(data))) {
                            return;
                        }
                        type = "message";
                        data = null;
                        id = null;
                    }
                }
            } catch (IOException e) {
                if (lastId == null) {
                    throw e;
                }
            }
            if (lastId == null || ++failures > RECONNECTS) {
                throw new IOException("the event stream ended before its last event");
            }
            Thread.sleep(retryMillis);
        }
    }

    /** How many times in a row {@link #events} opens a broken stream again. */
    private static final int RECONNECTS = 5;

    private static String field(String line) {
        String value = line.substring(line.indexOf(':') + 1);
        return value.startsWith(" ") ? value.substring(1) : value;
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
            JsonNode tree = Json.mapper().readTree(body);
            JsonNode error = tree.path("error");
            return new ApiError(status, error.path("code").asText("error"), error.path("message").asText(body), tree);
        } catch (IOException e) {
            return new ApiError(status, "error", "HTTP " + status + ": " + body, Json.mapper().getNodeFactory().textNode(body));
        }
    }
}
