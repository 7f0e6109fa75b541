package dev.ferry.orchestrator.migration;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * F3's fixed cost of S3–S6 as the last switchovers to each destination paid it: a completed
 * migration's downtime less what its estimate charged for moving and loading its stop-and-copy data
 * (the data at the bandwidth of the estimate, the devices' load and the digest as predicted). That is
 * what the estimate's own parts (four barriers and two round trips) cannot see: the data still in
 * flight when the source has written it, threads woken on both sides, R3's loads of devices that
 * sent nothing before stop-and-copy, the destination starting its vCPUs. By hand, on the 2-core
 * machine, a 1 GiB VM dirtied at 64 MiB/s with four devices and a 30 ms limit: those parts put the
 * downtime at 4–14 ms where it came to 15–38 ms.
 *
 * <p>Each destination keeps its last {@value #KEPT} figures and the estimate takes the quietest, as it
 * takes the quietest keepalive for a round trip: one switchover slowed by a collection, or the first one
 * of a fresh JVM, must not stand for all. Destinations are forgotten beyond {@value #DESTINATIONS}, the
 * least recently used first, keyed as the migration names the destination (a host name and its address
 * are two). A migration that did not converge while these figures set its fixed cost
 * forgets them: it records none, and without forgetting, a destination judged by a slow past would stay
 * shut. Shared by every migration of a daemon; thread-safe.
 */
final class SwitchoverCosts {
    static final int KEPT = 8;
    static final int DESTINATIONS = 64;

    private final Map<String, Deque<Long>> byDestination = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Deque<Long>> eldest) {
            return size() > DESTINATIONS;
        }
    };

    /** A completed switchover to {@code destination} cost {@code nanos} beyond moving and loading its data. */
    synchronized void record(String destination, long nanos) {
        Deque<Long> kept = byDestination.computeIfAbsent(destination, d -> new ArrayDeque<>(KEPT));
        if (kept.size() == KEPT) {
            kept.removeFirst();
        }
        kept.addLast(Math.max(0, nanos));
    }

    /** Forgets {@code destination}'s figures: a migration there that did not converge by them records none. */
    synchronized void forget(String destination) {
        byDestination.remove(destination);
    }

    /** The quietest of the last switchovers to {@code destination}, or 0 before the first. */
    synchronized long quietest(String destination) {
        Deque<Long> kept = byDestination.get(destination);
        if (kept == null) {
            return 0;
        }
        long least = Long.MAX_VALUE;
        for (long nanos : kept) {
            least = Math.min(least, nanos);
        }
        return least;
    }
}
