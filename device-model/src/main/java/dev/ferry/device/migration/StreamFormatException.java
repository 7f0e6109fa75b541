package dev.ferry.device.migration;

/** Device migration data that is incomplete, corrupt or incompatible (D8, W5). */
public final class StreamFormatException extends Exception {
    public StreamFormatException(String message) {
        super(message);
    }
}
