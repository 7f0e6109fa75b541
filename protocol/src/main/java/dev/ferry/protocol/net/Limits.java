package dev.ferry.protocol.net;

import dev.ferry.protocol.Frame;
import java.time.Duration;

/**
 * What a peer can make this side hold or wait for.
 *
 * @param handshakeTimeout  a channel must finish its handshake within this
 * @param keepaliveInterval each side sends a keepalive on every channel this often
 * @param keepaliveTimeout  a channel on which no frame arrived for this long is dropped; covers dead and slow peers
 * @param maxConnections    channels (handshaking or open) the server holds at once; more are refused
 * @param maxDataChannels   data channels per session, at most the protocol's 16
 * @param writeBufferLow    outbound bytes below which a channel is writable again
 * @param writeBufferHigh   outbound bytes above which a channel stops being writable (senders wait)
 */
public record Limits(Duration handshakeTimeout, Duration keepaliveInterval, Duration keepaliveTimeout, int maxConnections,
                     int maxDataChannels, int writeBufferLow, int writeBufferHigh) {
    public static final Limits DEFAULT = new Limits(Duration.ofSeconds(10), Duration.ofSeconds(1), Duration.ofSeconds(10),
            256, 16, 1 << 20, 4 << 20);

    public Limits {
        if (keepaliveTimeout.compareTo(keepaliveInterval.multipliedBy(2)) < 0) {
            throw new IllegalArgumentException("keepalive timeout must be at least twice the interval");
        }
        if (maxDataChannels < 1 || maxDataChannels > Frame.VmDescription.MAX_DATA_CHANNELS || maxConnections < 1
                || writeBufferLow > writeBufferHigh) {
            throw new IllegalArgumentException("invalid protocol limits");
        }
    }

    public Limits withKeepalive(Duration interval, Duration timeout) {
        return new Limits(handshakeTimeout, interval, timeout, maxConnections, maxDataChannels, writeBufferLow, writeBufferHigh);
    }

    public Limits withHandshakeTimeout(Duration timeout) {
        return new Limits(timeout, keepaliveInterval, keepaliveTimeout, maxConnections, maxDataChannels, writeBufferLow, writeBufferHigh);
    }

    public Limits withMaxConnections(int max) {
        return new Limits(handshakeTimeout, keepaliveInterval, keepaliveTimeout, max, maxDataChannels, writeBufferLow, writeBufferHigh);
    }
}
