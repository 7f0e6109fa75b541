package dev.ferry.orchestrator.api;

import dev.ferry.orchestrator.Refusal;
import io.netty.handler.codec.http.HttpResponseStatus;
import java.util.Map;

/**
 * An error the API returns as {@code {"error": {"code", "message", "details"}}} with its status.
 * Codes are stable snake_case; messages are sentences for people.
 */
public final class ApiException extends RuntimeException {
    private final HttpResponseStatus status;
    private final String code;
    private final Map<String, Object> details;

    public ApiException(HttpResponseStatus status, String code, String message, Map<String, Object> details) {
        super(message);
        this.status = status;
        this.code = code;
        this.details = Map.copyOf(details);
    }

    public ApiException(HttpResponseStatus status, String code, String message) {
        this(status, code, message, Map.of());
    }

    public HttpResponseStatus status() {
        return status;
    }

    public String code() {
        return code;
    }

    public Map<String, Object> details() {
        return details;
    }

    /** The one place a domain refusal becomes an HTTP status. */
    public static ApiException of(Refusal refusal) {
        HttpResponseStatus status = switch (refusal.kind()) {
            case INVALID -> HttpResponseStatus.BAD_REQUEST;
            case NOT_FOUND -> HttpResponseStatus.NOT_FOUND;
            case CONFLICT -> HttpResponseStatus.CONFLICT;
            case UNAVAILABLE -> HttpResponseStatus.SERVICE_UNAVAILABLE;
        };
        return new ApiException(status, refusal.code(), refusal.getMessage(), refusal.details());
    }

    public static ApiException badRequest(String code, String message) {
        return new ApiException(HttpResponseStatus.BAD_REQUEST, code, message);
    }

    public static ApiException invalid(String message) {
        return new ApiException(HttpResponseStatus.BAD_REQUEST, "invalid_request", message);
    }

    public static ApiException notFound(String code, String message) {
        return new ApiException(HttpResponseStatus.NOT_FOUND, code, message);
    }

    public static ApiException conflict(String code, String message) {
        return new ApiException(HttpResponseStatus.CONFLICT, code, message);
    }

    public static ApiException conflict(String code, String message, Map<String, Object> details) {
        return new ApiException(HttpResponseStatus.CONFLICT, code, message, details);
    }
}
