package dev.ferry.orchestrator.migration;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.ProtocolException;
import io.netty.util.ReferenceCountUtil;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * What a flow's thread waits on: the peer's control frames in their order, and markers of channels
 * that closed and of cancels. Event loops and the API add; the flow takes.
 */
final class Inbox {
    /** A channel closed: {@code control} tells which, {@code cause} is null for an orderly close. */
    record Closed(ProtocolException cause, boolean control) {
    }

    /** An operator cancelled. */
    record Cancelled() {
    }

    private final BlockingQueue<Object> items = new LinkedBlockingQueue<>();

    void add(Object item) {
        items.add(item);
    }

    /** The next item, or null after {@code timeout}. */
    Object poll(Duration timeout) throws InterruptedException {
        return items.poll(timeout.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** Removes and returns the first item that is queued now and matches, or null. */
    Object takeFirst(Predicate<Object> matching) {
        for (Object item : items) {
            if (matching.test(item) && items.remove(item)) {
                return item;
            }
        }
        return null;
    }

    /**
     * The peer's reason for a break: a broken data channel is a symptom, and the peer sends its reason
     * (ABORT) on the control channel before it closes anything, but that may be read a moment later.
     * Returns an ABORT or a cancel that is queued or arrives within {@code wait}; null if none does,
     * or if the control channel closes first. Items passed over are dropped (released if they hold
     * buffers): the flow is failing.
     */
    Object awaitReason(Duration wait) {
        long deadline = System.nanoTime() + wait.toNanos();
        try {
            while (true) {
                Object reason = takeFirst(item -> item instanceof Frame.Abort || item instanceof Cancelled);
                if (reason != null) {
                    return reason;
                }
                if (takeFirst(item -> item instanceof Closed closed && closed.control()) != null) {
                    return null;
                }
                long left = deadline - System.nanoTime();
                Object next = left <= 0 ? null : items.poll(left, TimeUnit.NANOSECONDS);
                if (next == null || (next instanceof Closed closed && closed.control())) {
                    return null;
                }
                if (next instanceof Frame.Abort || next instanceof Cancelled) {
                    return next;
                }
                ReferenceCountUtil.release(next);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /** Releases everything queued. */
    void drain() {
        for (Object item = items.poll(); item != null; item = items.poll()) {
            ReferenceCountUtil.release(item);
        }
    }
}
