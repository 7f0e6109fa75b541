package dev.ferry.protocol;

/** A peer broke the protocol, or a session ended for a reason that has a code. */
public class ProtocolException extends Exception {
    private final ErrorCode code;

    public ProtocolException(ErrorCode code, String message) {
        super(message);
        this.code = code;
    }

    public ErrorCode code() {
        return code;
    }

    @Override
    public String toString() {
        return code.label() + ": " + getMessage();
    }
}
