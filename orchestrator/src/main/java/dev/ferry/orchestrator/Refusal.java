package dev.ferry.orchestrator;

import java.util.Map;

/**
 * The daemon's refusal of an operation: why, as a stable snake_case code and a sentence, and of what
 * kind. The domain (VMs, migrations) speaks only this; the API maps each {@link Kind} to its status in
 * one place, so no HTTP type or status reaches the domain.
 */
public final class Refusal extends RuntimeException {
    /** What kind of refusal, which a transport maps to its own terms. */
    public enum Kind {
        /** The request itself is invalid. */
        INVALID,
        /** What it names does not exist. */
        NOT_FOUND,
        /** It conflicts with the current state. */
        CONFLICT,
        /** The daemon cannot take it now (shutting down). */
        UNAVAILABLE
    }

    private final Kind kind;
    private final String code;
    private final Map<String, Object> details;

    public Refusal(Kind kind, String code, String message, Map<String, Object> details) {
        super(message, null, false, false);
        this.kind = kind;
        this.code = code;
        this.details = Map.copyOf(details);
    }

    public Kind kind() {
        return kind;
    }

    public String code() {
        return code;
    }

    public Map<String, Object> details() {
        return details;
    }

    public static Refusal invalid(String message) {
        return new Refusal(Kind.INVALID, "invalid_request", message, Map.of());
    }

    public static Refusal notFound(String code, String message) {
        return new Refusal(Kind.NOT_FOUND, code, message, Map.of());
    }

    public static Refusal conflict(String code, String message) {
        return new Refusal(Kind.CONFLICT, code, message, Map.of());
    }

    public static Refusal conflict(String code, String message, Map<String, Object> details) {
        return new Refusal(Kind.CONFLICT, code, message, details);
    }

    public static Refusal unavailable(String code, String message) {
        return new Refusal(Kind.UNAVAILABLE, code, message, Map.of());
    }
}
