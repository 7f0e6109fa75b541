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

    /**
     * A broken connection said as its operating system says it ("connection reset by peer"), without the
     * transport's call and error number ("recvAddress(..) failed with error(-104): Connection reset by
     * peer") or an exception's class name: what users see of a lost connection.
     */
    public static String describeBroken(Throwable cause) {
        String message = cause.getMessage();
        if (message == null || message.isBlank()) {
            return "the connection broke";
        }
        int native_ = message.lastIndexOf("): ");
        if (native_ >= 0 && message.contains("failed with error(")) {
            message = message.substring(native_ + 3);
        }
        return message.isEmpty() ? message : Character.toLowerCase(message.charAt(0)) + message.substring(1);
    }

    @Override
    public String toString() {
        return code.label() + ": " + getMessage();
    }
}
