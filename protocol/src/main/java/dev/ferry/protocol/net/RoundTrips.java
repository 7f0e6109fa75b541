package dev.ferry.protocol.net;

import java.util.Arrays;

/**
 * A channel's recent keepalive round trips, and the one that predicts the next quiet round trip: the
 * smallest of the last {@link #WINDOW}.
 *
 * <p>A keepalive's answer waits behind whatever both sides' event loops are doing, so a sample taken
 * while a pass moves a gigabyte can be a hundred times the link's round trip. The switchover's round
 * trips come when the bulk data has stopped, so the source's estimate of the downtime (F9) wants the
 * round trip of a quiet link; a single busy sample, kept until the next keepalive a second later, would
 * put hundreds of milliseconds into an estimate whose real cost is a few, and a VM with nothing left to
 * send could spin through its passes without converging. The windowed minimum (as TCP congestion
 * control keeps a minimum RTT) forgets a busy sample as soon as a quiet one arrives, and still follows
 * a link that has become slower for good once the window has passed.
 */
final class RoundTrips {
    /** Samples kept: at the default keepalive interval of 1 s, the last 8 seconds. */
    static final int WINDOW = 8;

    private final long[] samples = new long[WINDOW];
    private int count;
    private int next;

    /** A keepalive's round trip was measured. */
    synchronized void add(long nanos) {
        samples[next] = nanos;
        next = (next + 1) % WINDOW;
        count = Math.min(WINDOW, count + 1);
    }

    /** The smallest of the recent round trips, or -1 before the first. */
    synchronized long quietest() {
        if (count == 0) {
            return -1;
        }
        return Arrays.stream(samples, 0, count).min().getAsLong();
    }
}
