package dev.ferry.orchestrator.migration;

import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.ProtocolException;

/**
 * Why a migration failed: a bounded code (a metrics label, the API's {@code error.code}) and a
 * sentence.
 */
public final class MigrationFailure extends Exception {
    public static final String CANCELLED = "cancelled";
    public static final String TIMEOUT = "timeout";
    public static final String SWITCHOVER_UNKNOWN = "switchover_unknown";
    public static final String VERIFY_FAILED = "verify_failed";
    public static final String DEVICE_LOAD_FAILED = "device_load_failed";
    public static final String DEVICE_TRANSITION_FAILED = "device_transition_failed";
    /** A source device's data window failed a read: its data cannot be whole (an I/O error of the window). */
    public static final String DEVICE_SAVE_FAILED = "device_save_failed";
    public static final String CONNECTION_FAILED = "connection_failed";
    public static final String CONNECTION_LOST = "connection_lost";
    public static final String INCOMPATIBLE = "incompatible";
    /** F8: the destination cannot host a device of the VM; details name the device, the field and why. */
    public static final String INCOMPATIBLE_DEVICE = "incompatible_device";
    public static final String SHUTDOWN = "shutdown";
    public static final String INTERNAL = "internal";
    /** The peer sent something the protocol or the migration on top does not allow. */
    public static final String PROTOCOL_ERROR = "protocol_error";

    private final String code;
    private final java.util.Map<String, Object> details;

    public MigrationFailure(String code, String message) {
        this(code, message, java.util.Map.of());
    }

    public MigrationFailure(String code, String message, java.util.Map<String, Object> details) {
        super(message);
        this.code = code;
        this.details = java.util.Map.copyOf(details);
    }

    public String code() {
        return code;
    }

    /** What the API shows in the error's {@code details}, e.g. F8's device, field and reason. */
    public java.util.Map<String, Object> details() {
        return details;
    }

    /** The wire code to abort the peer's side with. */
    public ErrorCode wireCode() {
        return switch (code) {
            case CANCELLED -> ErrorCode.CANCELLED;
            case TIMEOUT -> ErrorCode.MIGRATION_TIMEOUT;
            case VERIFY_FAILED -> ErrorCode.VERIFY_FAILED;
            case DEVICE_LOAD_FAILED -> ErrorCode.DEVICE_LOAD_FAILED;
            case INCOMPATIBLE -> ErrorCode.INCOMPATIBLE;
            case SHUTDOWN -> ErrorCode.SHUTDOWN;
            case DEVICE_TRANSITION_FAILED, DEVICE_SAVE_FAILED, INTERNAL -> ErrorCode.SOURCE_FAILED;
            case PROTOCOL_ERROR -> ErrorCode.OUT_OF_ORDER;
            default -> {
                ErrorCode known = fromLabel(code);
                yield known != null ? known : ErrorCode.INTERNAL;
            }
        };
    }

    /** A failure from the protocol: the peer's ABORT, a refused handshake, a broken channel. */
    public static MigrationFailure of(ProtocolException e, String context) {
        return new MigrationFailure(codeOf(e.code()), context + ": " + e.getMessage());
    }

    public static String codeOf(ErrorCode code) {
        return switch (code) {
            case CONNECTION_LOST, TRUNCATED -> CONNECTION_LOST;
            case MIGRATION_TIMEOUT -> TIMEOUT;
            case SOURCE_FAILED, DESTINATION_FAILED, INTERNAL -> "peer_failed";
            case MALFORMED, CHECKSUM, OVERSIZE, UNKNOWN_TYPE, OUT_OF_ORDER, OUT_OF_SEQUENCE, UNKNOWN -> PROTOCOL_ERROR;
            default -> code.label();
        };
    }

    private static ErrorCode fromLabel(String label) {
        for (ErrorCode value : ErrorCode.values()) {
            if (value.label().equals(label)) {
                return value;
            }
        }
        return null;
    }
}
