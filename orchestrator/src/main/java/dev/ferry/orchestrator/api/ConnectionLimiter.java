package dev.ferry.orchestrator.api;

import io.netty.channel.Channel;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Which connections the API holds. At most {@code max} in all, and at most {@code maxPerAddress} from
 * one remote address, so that one client, however slowly it sends, can take only its share. When the
 * server is full, a new connection takes the place of the one that has been idle longest (a keep-alive
 * connection between requests): an idle connection costs its client nothing to reopen, while a client
 * turned away gets no answer at all.
 *
 * <p>Connections live on several event loops; admission is one lock, taken once per connection.
 */
final class ConnectionLimiter {
    /** Why a connection was not admitted. */
    enum Refusal {
        /** Every connection is busy. */
        SERVER,
        /** Its address holds its share already. */
        ADDRESS
    }

    private final int max;
    private final int maxPerAddress;
    private final Set<Connection> open = new HashSet<>();
    private final Map<InetAddress, Integer> perAddress = new HashMap<>();

    ConnectionLimiter(int max, int maxPerAddress) {
        if (max < 1 || maxPerAddress < 1 || maxPerAddress > max) {
            throw new IllegalArgumentException("connection limits: " + maxPerAddress + " per address of " + max);
        }
        this.max = max;
        this.maxPerAddress = maxPerAddress;
    }

    int max() {
        return max;
    }

    int maxPerAddress() {
        return maxPerAddress;
    }

    /** Admits the connection, making room by evicting the connection idle longest if needed; or says why not. */
    synchronized Refusal admit(Connection connection) {
        if (perAddress.getOrDefault(connection.address, 0) >= maxPerAddress) {
            return Refusal.ADDRESS;
        }
        while (open.size() >= max) {
            Connection idle = longestIdle();
            if (idle == null) {
                return Refusal.SERVER;
            }
            // It may have become busy since it was looked at; then it stays, and the next is tried.
            if (idle.evict()) {
                forget(idle);
            }
        }
        open.add(connection);
        perAddress.merge(connection.address, 1, Integer::sum);
        return null;
    }

    /** Forgets a connection that closed; once only, whether it was evicted or not. */
    synchronized void release(Connection connection) {
        forget(connection);
    }

    synchronized int idle() {
        return (int) open.stream().filter(Connection::isIdle).count();
    }

    private void forget(Connection connection) {
        if (open.remove(connection)) {
            perAddress.computeIfPresent(connection.address, (address, count) -> count > 1 ? count - 1 : null);
        }
    }

    private Connection longestIdle() {
        Connection oldest = null;
        for (Connection connection : open) {
            if (connection.isIdle() && (oldest == null || connection.idleSince - oldest.idleSince < 0)) {
                oldest = connection;
            }
        }
        return oldest;
    }

    /**
     * One connection's standing: idle (no request under way and no answer pending, so it may be evicted),
     * busy, or evicted. Its event loop moves it between idle and busy; eviction comes from the event
     * loop of another connection, hence the compare-and-set.
     */
    static final class Connection {
        private static final int IDLE = 0;
        private static final int BUSY = 1;
        private static final int EVICTED = 2;

        private final Channel channel;
        private final InetAddress address;
        private final AtomicInteger state = new AtomicInteger(IDLE);
        private volatile long idleSince = System.nanoTime();

        Connection(Channel channel) {
            this.channel = channel;
            // Loopback and the like; a channel that is not on IP counts as one address.
            this.address = channel.remoteAddress() instanceof InetSocketAddress inet ? inet.getAddress()
                    : InetAddress.getLoopbackAddress();
        }

        InetAddress address() {
            return address;
        }

        /** Marks it busy; false if it was evicted (it is closing, and what it sends is dropped). */
        boolean busy() {
            return state.compareAndSet(IDLE, BUSY) || state.get() == BUSY;
        }

        void idle() {
            idleSince = System.nanoTime();
            state.compareAndSet(BUSY, IDLE);
        }

        boolean isIdle() {
            return state.get() == IDLE;
        }

        /** Whether it was closed to make room for another. */
        boolean evicted() {
            return state.get() == EVICTED;
        }

        private boolean evict() {
            if (!state.compareAndSet(IDLE, EVICTED)) {
                return false;
            }
            channel.close();
            return true;
        }
    }
}
