package dev.ferry.orchestrator.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import io.netty.handler.codec.http.HttpMethod;
import java.io.IOException;
import java.util.List;
import java.util.Map;

/** One API request, its body read and its route's path parameters bound. */
public final class ApiRequest {
    private final HttpMethod method;
    private final String path;
    private final Map<String, String> parameters;
    private final Map<String, List<String>> query;
    private final byte[] body;
    private final io.netty.handler.codec.http.HttpHeaders headers;

    public ApiRequest(HttpMethod method, String path, Map<String, String> parameters, Map<String, List<String>> query, byte[] body,
                      io.netty.handler.codec.http.HttpHeaders headers) {
        this.method = method;
        this.path = path;
        this.parameters = Map.copyOf(parameters);
        this.query = Map.copyOf(query);
        this.body = body;
        this.headers = headers;
    }

    /** A request header, or {@code null}. */
    public String header(CharSequence name) {
        return headers.get(name);
    }

    public HttpMethod method() {
        return method;
    }

    public String path() {
        return path;
    }

    /** A path parameter of the route, like {@code vm} in {@code /v1/vms/{vm}}. */
    public String parameter(String name) {
        String value = parameters.get(name);
        if (value == null) {
            throw new IllegalStateException("route has no parameter " + name);
        }
        return value;
    }

    /** The first value of a query parameter, or {@code null}. */
    public String query(String name) {
        List<String> values = query.get(name);
        return values == null || values.isEmpty() ? null : values.get(0);
    }

    public boolean hasBody() {
        return body.length > 0;
    }

    /** The body as {@code type}, strictly: 400 for malformed JSON, unknown fields or wrong types. */
    public <T> T body(Class<T> type) {
        if (body.length == 0) {
            throw ApiException.badRequest("missing_body", "this request needs a JSON body");
        }
        try {
            T value = Json.mapper().readValue(body, type);
            if (value == null) {
                throw ApiException.badRequest("missing_body", "this request needs a JSON object, not null");
            }
            return value;
        } catch (UnrecognizedPropertyException e) {
            throw new ApiException(io.netty.handler.codec.http.HttpResponseStatus.BAD_REQUEST, "unknown_field",
                    Json.describe(e), Map.of("field", Json.fieldOf(e)));
        } catch (MismatchedInputException e) {
            if (e.getOriginalMessage() != null && e.getOriginalMessage().startsWith("Trailing token")) {
                throw ApiException.badRequest("malformed_json", "malformed JSON: something follows the value");
            }
            throw new ApiException(io.netty.handler.codec.http.HttpResponseStatus.BAD_REQUEST, "invalid_field",
                    Json.describe(e), Map.of("field", Json.fieldOf(e)));
        } catch (IOException e) {
            throw ApiException.badRequest("malformed_json", Json.describe(e));
        }
    }

    /** The body as a tree, for fields that take several types. */
    public JsonNode bodyTree() {
        return body(JsonNode.class);
    }
}
