package dev.ferry.protocol;

import io.netty.util.AttributeKey;

/**
 * Sees every frame a channel sends, whatever sent it (the application, or the channel's own
 * keepalives): once as it is queued and once when it is written to the socket. A session paces all of
 * its bytes through one meter (a rate limit over pages, device data and control alike) and counts
 * what actually left, so progress never runs ahead of the wire.
 */
public interface TrafficMeter {
    AttributeKey<TrafficMeter> KEY = AttributeKey.valueOf(TrafficMeter.class, "meter");

    /** A frame of {@code bytes} bytes on the wire (header included) is queued for writing. */
    default void queued(FrameType type, int bytes) {
    }

    /** That frame is written to the socket. */
    default void written(Sent sent) {
    }

    /**
     * A frame written: its type and bytes on the wire; for PAGES the pages it carried and how many were
     * zero (a flag only); for DEVICE_DATA the device's index in the VM description, else -1.
     */
    record Sent(FrameType type, int bytes, long pages, long zeroPages, int device) {
    }
}
