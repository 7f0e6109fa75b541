package dev.ferry.protocol.capture;

/** A capture file that does not follow {@link CaptureFormat}: where, and what is wrong. */
public final class CaptureFormatException extends Exception {
    private final long offset;

    public CaptureFormatException(long offset, String message) {
        super(message + " (at file offset " + offset + ")");
        this.offset = offset;
    }

    /** Where in the file the problem is. */
    public long offset() {
        return offset;
    }
}
