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

    /**
     * That frame is written to the socket. For PAGES, {@code pages} is the pages it carried and
     * {@code zeroPages} how many of them were zero (sent as a flag only); 0 for other frames.
     */
    default void written(FrameType type, int bytes, int pages, int zeroPages) {
    }
}
