package dev.ferry.protocol;

/**
 * Protocol versions. A client offers the range it speaks; the server picks the highest version in
 * both ranges or refuses with {@link ErrorCode#UNSUPPORTED_VERSION}, naming its own range.
 */
public final class ProtocolVersion {
    public static final int MIN = 1;
    public static final int MAX = 1;
    /** The version this build speaks. */
    public static final int CURRENT = MAX;

    private ProtocolVersion() {
    }

    /** The version both ranges share, highest first, or -1. */
    public static int negotiate(int clientMin, int clientMax, int serverMin, int serverMax) {
        int version = Math.min(clientMax, serverMax);
        return version >= Math.max(clientMin, serverMin) ? version : -1;
    }
}
