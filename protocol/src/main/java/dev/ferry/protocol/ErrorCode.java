package dev.ferry.protocol;

import java.util.Locale;

/**
 * Why a handshake was refused, a session aborted, or a channel dropped. The number travels in
 * REFUSE and ABORT frames; the name is what logs and the daemon's API show.
 */
public enum ErrorCode {
    // Framing: the peer's bytes are not valid frames.
    MALFORMED(1), CHECKSUM(2), OVERSIZE(3), UNKNOWN_TYPE(4), OUT_OF_ORDER(5), OUT_OF_SEQUENCE(6), TRUNCATED(7),
    TIMEOUT(8), CONNECTION_LOST(9),
    // Handshake.
    BAD_MAGIC(10), UNSUPPORTED_VERSION(11), AUTH_FAILED(12), BAD_ROLE(13), UNKNOWN_SESSION(14),
    DUPLICATE_CHANNEL(15), BUSY(16),
    // The migration on top (sent in ABORT).
    INCOMPATIBLE(20), CANCELLED(21), DEVICE_LOAD_FAILED(22), VERIFY_FAILED(23), MIGRATION_TIMEOUT(24),
    SHUTDOWN(25), INTERNAL(26), DESTINATION_FAILED(27), DUPLICATE_VM(28), SOURCE_FAILED(29), INCOMPATIBLE_DEVICE(30),
    /** A code this version does not know; kept so a newer peer's ABORT still reads. */
    UNKNOWN(0xffff);

    private final int code;

    ErrorCode(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    /** The snake_case name used in logs and in the daemon's API. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static ErrorCode of(int code) {
        for (ErrorCode value : values()) {
            if (value.code == code) {
                return value;
            }
        }
        return UNKNOWN;
    }
}
