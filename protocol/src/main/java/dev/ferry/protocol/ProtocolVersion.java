package dev.ferry.protocol;

/**
 * Protocol versions. A client offers the range it speaks; the server picks the highest version in
 * both ranges or refuses with {@link ErrorCode#UNSUPPORTED_VERSION}, naming its own range.
 *
 * <p>Version 2 changed which data channel carries a device's data (F10): each device keeps to one
 * channel when the VM has at least as many devices as channels. The receiver refuses a chunk on any
 * other channel, so a version-1 peer is refused at the handshake, before anything moves, rather than
 * failing at the first device chunk that came where it did not expect it.
 */
public final class ProtocolVersion {
    public static final int MIN = 2;
    public static final int MAX = 2;
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
