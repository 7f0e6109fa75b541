package dev.ferry.orchestrator.migration;

import dev.ferry.protocol.ErrorCode;
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
 * that closed and of the flow being stopped. Event loops and the API add; the flow takes, and turns
 * what ends a migration (the peer's ABORT, a broken channel, a cancel) into the failure that says why.
 *
 * <p>No wait here has a clock of its own unless the caller gives one: a live peer is one whose
 * channels stay open (the keepalive timeout closes a silent one), and a stop comes as a marker.
 */
final class PeerReplies {
    /** A channel closed: {@code control} tells which, {@code cause} is null for an orderly close. */
    record Closed(ProtocolException cause, boolean control) {
    }

    /** The flow is asked to stop: a cancel, the daemon stopping, or the migration's time running out. */
    record Stopped(String reason) {
    }

    /** Something the flow does not run itself found a failure (a device's data failed to load on an event loop). */
    record Failed(MigrationFailure failure) {
    }

    /** How long a broken data channel waits for the peer's reason on the control channel. */
    static final Duration REASON_WAIT = Duration.ofSeconds(2);

    private final BlockingQueue<Object> items = new LinkedBlockingQueue<>();
    private final String peer;
    private volatile boolean closed;
    private long acknowledged;

    /** @param peer who replies, for messages: {@code destination} or {@code source} */
    PeerReplies(String peer) {
        this.peer = peer;
    }

    /**
     * Queues a frame or marker; after {@link #close} it is released instead. SWITCHOVER_ACK is not
     * queued: it comes at any time and only its latest sequence matters ({@link #acknowledged}).
     */
    void add(Object item) {
        if (item instanceof Frame.SwitchoverAck ack) {
            synchronized (this) {
                acknowledged = Math.max(acknowledged, ack.sequence());
                notifyAll();
            }
            return;
        }
        items.add(item);
        if (closed) {
            drain();
        }
    }

    /** The flow has ended: what is queued is released, and so is whatever still arrives. */
    void close() {
        closed = true;
        drain();
    }

    /**
     * The next frame from the peer. A marker that ends the migration (ABORT, a closed channel, a stop)
     * is thrown as the failure that explains it.
     *
     * @param deadlineNanos a {@link System#nanoTime()} to give up at ({@code null} returned), or
     *                      {@link Long#MAX_VALUE} for none
     */
    Frame next(long deadlineNanos) throws MigrationFailure, InterruptedException {
        Object item = deadlineNanos == Long.MAX_VALUE ? items.take()
                : items.poll(Math.max(0, deadlineNanos - System.nanoTime()), TimeUnit.NANOSECONDS);
        if (item == null) {
            return null;
        }
        if (item instanceof Frame frame && !(item instanceof Frame.Abort)) {
            return frame;
        }
        throw explain(item);
    }

    /**
     * The next frame, which must be of {@code type}; frames {@code passOver} matches are skipped.
     *
     * @throws MigrationFailure {@code timeout} at the deadline, {@code protocol_error} for another frame,
     *                          or what ended the migration
     */
    <T extends Frame> T await(Class<T> type, Predicate<Frame> passOver, long deadlineNanos, String what)
            throws MigrationFailure, InterruptedException {
        while (true) {
            Frame frame = next(deadlineNanos);
            if (frame == null) {
                throw new MigrationFailure(MigrationFailure.TIMEOUT, what);
            }
            if (type.isInstance(frame)) {
                return type.cast(frame);
            }
            if (!passOver.test(frame)) {
                ReferenceCountUtil.release(frame);
                throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "expected " + type.getSimpleName() + ", the "
                        + peer + " sent " + frame.type());
            }
            ReferenceCountUtil.release(frame);
        }
    }

    /** The sequence of the latest SWITCHOVER_ACK (F7): how many DEVICE_INITIAL frames the destination has loaded. */
    synchronized long acknowledged() {
        return acknowledged;
    }

    /** Waits up to {@code millis} for a SWITCHOVER_ACK covering {@code sequence}; true if one does. */
    synchronized boolean awaitAcknowledged(long sequence, long millis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        while (acknowledged < sequence) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            TimeUnit.NANOSECONDS.timedWait(this, left);
        }
        return true;
    }

    /** What ended the migration, if something queued says so; null otherwise. Does not wait. */
    MigrationFailure ended() {
        Object broken = takeFirst(item -> item instanceof Closed || item instanceof Frame.Abort || item instanceof Stopped
                || item instanceof Failed);
        return broken == null ? null : explain(broken);
    }

    /**
     * The failure a marker stands for. A broken data channel is a symptom: the peer sends its reason
     * (ABORT) on the control channel before it closes anything, but that may be read a moment later,
     * so a broken data channel waits briefly for it.
     */
    MigrationFailure explain(Object item) {
        // Only a channel the peer broke is the peer's to explain. One this side dropped (for silence,
        // a bad checksum, a frame out of order) is explained here: both ends of a stalled channel find
        // out at once, and neither may wait for the other.
        if (item instanceof Closed closed && !closed.control() && closedByPeer(closed.cause())) {
            Object reason = awaitReason(REASON_WAIT);
            // A peer whose own reason is only that a connection broke saw a symptom too: what this side
            // saw (a frame cut short, say) then says more.
            boolean symptom = reason instanceof Frame.Abort abort && abort.code() == ErrorCode.CONNECTION_LOST
                    && closed.cause() != null;
            if (reason != null && !symptom) {
                return failureOf(reason);
            }
        }
        return failureOf(item);
    }

    private static boolean closedByPeer(ProtocolException cause) {
        return cause == null || cause.code() == ErrorCode.CONNECTION_LOST || cause.code() == ErrorCode.TRUNCATED;
    }

    /** A send failed: the peer's own reason, if it sends one soon, says more than the broken channel. */
    MigrationFailure explainSendFailure(ProtocolException e, String during) {
        Object reason = awaitReason(REASON_WAIT);
        return reason != null ? failureOf(reason) : MigrationFailure.of(e, during);
    }

    private MigrationFailure failureOf(Object item) {
        if (item instanceof Frame.Abort abort) {
            return new MigrationFailure(MigrationFailure.codeOf(abort.code()), "the " + peer + " aborted: " + abort.message());
        }
        if (item instanceof Closed closed) {
            ProtocolException cause = closed.cause() != null ? closed.cause()
                    : new ProtocolException(ErrorCode.CONNECTION_LOST, "the " + peer + " closed the connection");
            return MigrationFailure.of(cause, (closed.control() ? "control" : "data") + " channel with the " + peer);
        }
        if (item instanceof Stopped stopped) {
            return new MigrationFailure(stopped.reason(), "stopped");
        }
        if (item instanceof Failed failed) {
            return failed.failure();
        }
        return new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "unexpected " + item);
    }

    /**
     * An ABORT or a stop that is queued or arrives within {@code wait}; null if none does, or if the
     * control channel closes first. Frames passed over are released: the flow is failing.
     */
    private Object awaitReason(Duration wait) {
        long deadline = System.nanoTime() + wait.toNanos();
        try {
            while (true) {
                Object reason = takeFirst(item -> item instanceof Frame.Abort || item instanceof Stopped || item instanceof Failed);
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
                if (next instanceof Frame.Abort || next instanceof Stopped || next instanceof Failed) {
                    return next;
                }
                ReferenceCountUtil.release(next);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    private Object takeFirst(Predicate<Object> matching) {
        for (Object item : items) {
            if (matching.test(item) && items.remove(item)) {
                return item;
            }
        }
        return null;
    }

    private void drain() {
        for (Object item = items.poll(); item != null; item = items.poll()) {
            ReferenceCountUtil.release(item);
        }
    }
}
