package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.device.migration.WindowWrite;
import dev.ferry.orchestrator.metrics.FerryMetrics;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.net.FrameChannel;
import io.netty.buffer.ByteBuf;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The destination's side of every device's data (F10, W7, F7). Chunks arrive on the data channels
 * beside the pages, each on the channel {@link DeviceStreams#channelOf} names: all of a device's on one
 * channel when there are at least as many devices as channels, spread over every channel when there
 * are fewer. Each device's chunks are loaded into its window in stream order as they arrive (W7), on
 * an event loop that brought them.
 *
 * <p>One event loop at a time loads a device: the one that brought the chunk whose turn it is, while
 * no other is loading that device (when a device keeps to one channel, always that channel's loop).
 * A chunk that arrives while another loop loads its device, or before its turn, is queued and the loop
 * goes back to its channel at once; the loop that is loading takes every queued chunk whose turn comes
 * before it stops. An event loop never waits for another's
 * load: with two channels bringing one device's chunks in turn, a loop that waited would stand idle for
 * as long as the other loads, and device data over two channels would move slower than over one.
 *
 * <p>What is queued is bounded: above {@link #HIGH} bytes for all devices together, a channel that
 * brings more stops being read, unless it carries a device's first chunk still to come, so that every
 * stream can always move on; below {@link #LOW} every paused channel is read again.
 *
 * <p>F7: the source announces where each round of a device's initial data ends (DEVICE_INITIAL); once
 * every device has loaded up to its latest announced end, the destination acknowledges the switchover
 * (SWITCHOVER_ACK with the number of announcements it covers), until PREPARE.
 */
final class IncomingDevices {
    /** Queued chunks held for all devices together, above which channels bringing more are paused. */
    static final long HIGH = 64L << 20;
    private static final long LOW = 16L << 20;
    /** How long PREPARE waits for a running load to take its next chunk (F12); a chunk loads in well under a millisecond. */
    private static final long LOAD_WAIT_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long PROGRESS_CHECK_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    /** One device's stream as it arrives. Guarded by itself. */
    private static final class Stream {
        final Device device;
        final int index;
        /** The next byte of the stream to load, and the number of chunks taken for loading. */
        long expected;
        long chunks;
        /** Whether an event loop is loading this device's chunks now (outside the lock). */
        boolean loading;
        /** Where the chunks arrived without a gap end, and how many they are: the next to come is chunk {@code arrivedChunks}. */
        long arrivedEnd;
        long arrivedChunks;
        /** Chunks that arrived and wait to be loaded, by offset, and the channel each came on. */
        final TreeMap<Long, Queued> queued = new TreeMap<>();
        long loadNanos;
        /** DEVICE_END's total, or -1 before it. */
        long total = -1;
        /** The end of the latest round of initial data announced (F7), or -1 for none. */
        long initialEnd = -1;

        Stream(Device device, int index) {
            this.device = device;
            this.index = index;
        }

        /** A chunk at {@code offset} arrived: the gapless run grows over it and over what it joins. Holding the stream. */
        void arrived(long offset, int bytes) {
            if (offset != arrivedEnd) {
                return;
            }
            arrivedEnd += bytes;
            arrivedChunks++;
            for (Queued next = queued.get(arrivedEnd); next != null; next = queued.get(arrivedEnd)) {
                arrivedEnd += next.data().readableBytes();
                arrivedChunks++;
            }
        }

        /** The next chunk to load, taken off the queue and claimed, or {@code null} (then loading ends). Holding the stream. */
        Queued takeNext() {
            Queued next = queued.remove(expected);
            if (next == null) {
                loading = false;
                notifyAll();
                return null;
            }
            return claim(next);
        }

        /** Claims a chunk whose turn it is: the stream's next offset and chunk number move past it. Holding the stream. */
        Queued claim(Queued chunk) {
            chunk = new Queued(chunk.data(), chunk.channel(), chunks);
            expected += chunk.data().readableBytes();
            chunks++;
            return chunk;
        }
    }

    /** A chunk and the channel it came on; {@code sequence} is its number in the stream once claimed, -1 before. */
    private record Queued(ByteBuf data, int channel, long sequence) {
    }

    private final List<Stream> streams = new ArrayList<>();
    private final int channels;
    private final FrameChannel control;
    private final Migration migration;
    private final FerryMetrics metrics;
    private final Supplier<String> phase;
    private final FlowHooks hooks;
    private final PeerReplies replies;
    private final long high;
    private final long low;
    private final AtomicLong held = new AtomicLong();
    private final Set<FrameChannel> paused = ConcurrentHashMap.newKeySet();
    private final Runnable abandon;
    private volatile boolean failed;
    /** Set by {@link #discard()}: a chunk that still arrives is released, never queued nor loaded. */
    private volatile boolean discarded;
    private volatile MigrationFailure firstFailure;
    // Guarded by this: announcements received and acknowledged, and whether acknowledging is over.
    private long announced;
    private long acknowledged;
    private boolean prepared;

    /** @param abandon ends the flow's waits on the data channels when a device's data fails */
    IncomingDevices(List<Device> devices, int channels, FrameChannel control, Migration migration, FerryMetrics metrics,
                    Supplier<String> phase, FlowHooks hooks, PeerReplies replies, Runnable abandon) {
        this(devices, channels, control, migration, metrics, phase, hooks, replies, abandon, HIGH, LOW);
    }

    /** With other bounds on what is queued, for a test that reaches them with a small device. */
    IncomingDevices(List<Device> devices, int channels, FrameChannel control, Migration migration, FerryMetrics metrics,
                    Supplier<String> phase, FlowHooks hooks, PeerReplies replies, Runnable abandon, long high, long low) {
        for (int i = 0; i < devices.size(); i++) {
            streams.add(new Stream(devices.get(i), i));
        }
        this.channels = channels;
        this.control = control;
        this.migration = migration;
        this.metrics = metrics;
        this.phase = phase;
        this.hooks = hooks;
        this.replies = replies;
        this.abandon = abandon;
        this.high = high;
        this.low = low;
    }

    /**
     * A chunk arrived on a data channel; on its event loop. Takes the chunk: it is loaded now (with every
     * queued one whose turn that makes), or queued until its turn or until the loop loading its device
     * takes it, or released if the migration already failed.
     */
    void chunk(FrameChannel channel, Frame.DeviceData chunk) {
        int device = chunk.device();
        if (failed || discarded || device < 0 || device >= streams.size()) {
            chunk.release();
            if (!failed && !discarded) {
                fail(new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "device data for device " + device + " of a VM with "
                        + streams.size() + " devices"));
            }
            return;
        }
        Stream stream = streams.get(device);
        int bytes = chunk.content().readableBytes();
        long wire = bytes + Frame.DeviceData.WIRE_OVERHEAD;
        migration.wire(wire);
        metrics.received(phase.get(), "device", wire);
        Queued mine = new Queued(chunk.content(), channel.index(), -1);
        Queued load = null;
        synchronized (stream) {
            if (discarded) {
                // The flow already let go of this stream (decided under its lock, so nothing is left queued).
                chunk.release();
                return;
            }
            if (chunk.offset() < stream.expected || stream.queued.containsKey(chunk.offset())
                    || (stream.total >= 0 && chunk.offset() + bytes > stream.total)) {
                chunk.release();
                fail(new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "data of device " + stream.device.id() + " at offset "
                        + chunk.offset() + " again, or past its end"));
                return;
            }
            if (chunk.offset() == stream.expected && !stream.loading) {
                stream.loading = true;
                load = stream.claim(mine);
            } else {
                stream.queued.put(chunk.offset(), mine);
                held.addAndGet(bytes);
            }
            stream.arrived(chunk.offset(), bytes);
        }
        if (load != null) {
            loadWhileInTurn(stream, load);
        } else if (held.get() > high && !carriesANextChunk(channel.index())) {
            // Decided holding no stream: the check looks at every stream.
            paused.add(channel);
            channel.pauseReading();
        }
        resumeWhereNeeded();
        acknowledgeIfLoaded();
    }

    /**
     * Loads a claimed chunk, then every queued one whose turn comes, until the next is not there; the
     * stream is this loop's alone meanwhile ({@code loading}), so no lock is held while a device loads.
     */
    private void loadWhileInTurn(Stream stream, Queued first) {
        Queued chunk = first;
        while (chunk != null) {
            long nanos = 0;
            try {
                nanos = load(stream, chunk);
            } catch (RuntimeException e) {
                // A device that throws instead of answering (its window closed under a teardown, a hook that
                // failed) fails the migration as a failed write does; the stream is given up below, so no
                // loop is left waiting for a load that ended.
                fail(new MigrationFailure(MigrationFailure.DEVICE_LOAD_FAILED, "device " + stream.device.id()
                        + " could not load its data: " + e));
            } finally {
                chunk.data().release();
            }
            synchronized (stream) {
                stream.loadNanos += nanos;
                if (failed || discarded) {
                    // What is still queued is released by discard(), once nothing reads the channels.
                    stream.loading = false;
                    stream.notifyAll();
                    return;
                }
                chunk = stream.takeNext();
                if (chunk != null) {
                    held.addAndGet(-chunk.data().readableBytes());
                }
            }
        }
    }

    /**
     * Loads a chunk whose turn it is into its device's window (W7); the time it took. The caller is the
     * only one loading the stream, and holds no lock.
     */
    private long load(Stream stream, Queued chunk) {
        if (failed) {
            return 0;
        }
        int route = DeviceStreams.channelOf(stream.index, chunk.sequence(), streams.size(), channels);
        if (chunk.channel() != route) {
            fail(new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "chunk " + chunk.sequence() + " of device " + stream.device.id()
                    + " came on data channel " + chunk.channel() + ", not " + route));
            return 0;
        }
        ByteBuf data = chunk.data();
        int bytes = data.readableBytes();
        // A frame that arrived in several reads is a composite: its parts go to the window one after
        // another (the device takes its stream in pieces of any size, W7), never merged into a copy.
        long start = System.nanoTime();
        WindowWrite written = null;
        pieces:
        for (ByteBuffer piece : data.nioBuffers()) {
            hooks.deviceData(stream.device.id(), piece);
            // A write may be short: the device took the first bytes and leaves the rest for the next write.
            while (piece.hasRemaining()) {
                written = stream.device.writeWindow(piece);
                if (written instanceof WindowWrite.Failed) {
                    break pieces;
                }
            }
        }
        long nanos = System.nanoTime() - start;
        migration.deviceData(stream.device.id(), bytes);
        if (written instanceof WindowWrite.Failed failed) {
            // D8, only earlier (W7): the device is in ERROR and the migration cannot go on.
            fail(new MigrationFailure(MigrationFailure.DEVICE_LOAD_FAILED, "device " + stream.device.id() + " could not load its data: "
                    + failed.describe()));
        }
        return nanos;
    }

    /** Whether {@code channel} carries some device's first chunk still to come: pausing it could stall that stream. */
    private boolean carriesANextChunk(int channel) {
        for (Stream stream : streams) {
            synchronized (stream) {
                boolean waiting = stream.total < 0 || stream.arrivedEnd < stream.total;
                if (waiting && DeviceStreams.channelOf(stream.index, stream.arrivedChunks, streams.size(), channels) == channel) {
                    return true;
                }
            }
        }
        return false;
    }

    private void resumeWhereNeeded() {
        if (paused.isEmpty()) {
            return;
        }
        boolean below = held.get() < low;
        for (FrameChannel channel : paused) {
            if ((below || carriesANextChunk(channel.index())) && paused.remove(channel)) {
                channel.channel().eventLoop().execute(channel::resumeReading);
            }
        }
    }

    /** DEVICE_END: the device's stream has {@code totalBytes}; on the flow's thread. */
    void ended(Frame.DeviceEnd end) throws MigrationFailure {
        Stream stream = stream(end.device());
        synchronized (stream) {
            if (stream.total >= 0 || end.totalBytes() < stream.expected) {
                throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "device " + stream.device.id() + " ended at "
                        + end.totalBytes() + " bytes, after " + stream.expected + " arrived, or twice");
            }
            stream.total = end.totalBytes();
        }
    }

    /** F7: a round of a device's initial data ends at an offset; on the flow's thread. */
    void announced(Frame.DeviceInitial initial) throws MigrationFailure {
        Stream stream = stream(initial.device());
        synchronized (stream) {
            stream.initialEnd = Math.max(stream.initialEnd, initial.endOffset());
        }
        synchronized (this) {
            announced++;
        }
        acknowledgeIfLoaded();
    }

    /** The switchover is acknowledged only before PREPARED: after PREPARE nothing more is announced. */
    synchronized void prepare() {
        prepared = true;
    }

    private void acknowledgeIfLoaded() {
        synchronized (this) {
            if (prepared || announced == acknowledged) {
                return;
            }
            for (Stream stream : streams) {
                synchronized (stream) {
                    if (stream.initialEnd > stream.expected || stream.device.loadedBytes() < stream.initialEnd) {
                        return;
                    }
                }
            }
            acknowledged = announced;
            // Through the control channel's event loop, in the order decided here: a send made on that
            // loop would otherwise overtake one queued a moment before from another thread.
            Frame.SwitchoverAck ack = new Frame.SwitchoverAck(acknowledged);
            control.channel().eventLoop().execute(() -> control.send(ack));
        }
    }

    /**
     * Every device's stream arrived to its end (DEVICE_END's total) and was loaded, and nothing waits in
     * the queue. A stream that failed to load is the answer first: the data after its failure was dropped,
     * so the streams are incomplete because of it, and PREPARE may come before the failure's reply was taken.
     *
     * <p>Called once every data channel has ended. A loop may still be loading then: chunks that another
     * channel brought and queued are loaded by whichever loop holds the stream, after that channel ended.
     * The wait lasts while the load moves on; a load that takes no further chunk for {@link #LOAD_WAIT_NANOS}
     * fails the migration (F12: bounded, and interruptible by cancel).
     */
    MigrationFailure incomplete() throws InterruptedException {
        for (Stream stream : streams) {
            synchronized (stream) {
                long seen = stream.expected;
                long deadline = System.nanoTime() + LOAD_WAIT_NANOS;
                while (stream.loading) {
                    if (stream.expected != seen) {
                        seen = stream.expected;
                        deadline = System.nanoTime() + LOAD_WAIT_NANOS;
                    }
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        return new MigrationFailure(MigrationFailure.INTERNAL, "device " + stream.device.id() + " loaded nothing for "
                                + TimeUnit.NANOSECONDS.toSeconds(LOAD_WAIT_NANOS) + " s after PREPARE, at byte " + stream.expected);
                    }
                    // Woken when the load ends; the slice only rechecks its progress, which wakes no one.
                    TimeUnit.NANOSECONDS.timedWait(stream, Math.min(left, PROGRESS_CHECK_NANOS));
                }
            }
        }
        if (failed) {
            return firstFailure;
        }
        for (Stream stream : streams) {
            synchronized (stream) {
                if (stream.total < 0) {
                    return new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "PREPARE before device " + stream.device.id()
                            + " ended its data; a VM is built only from a complete stream (F11)");
                }
                if (stream.expected != stream.total) {
                    return new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "device " + stream.device.id() + " sent "
                            + stream.expected + " of its " + stream.total + " bytes; a VM is built only from a complete stream (F11)");
                }
                if (!stream.queued.isEmpty()) {
                    return new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "device " + stream.device.id() + " sent data at offset "
                            + stream.queued.firstKey() + ", past its end at " + stream.total + " bytes");
                }
            }
        }
        return null;
    }

    /** How far each device has loaded its data and how long that took, for ITERATION_DONE (F9). */
    List<Frame.IterationDone.DeviceLoad> loads() {
        List<Frame.IterationDone.DeviceLoad> loads = new ArrayList<>(streams.size());
        for (Stream stream : streams) {
            synchronized (stream) {
                loads.add(new Frame.IterationDone.DeviceLoad(stream.device.loadedBytes(), stream.loadNanos / 1000));
            }
        }
        return loads;
    }

    /** Releases whatever waits out of order; the migration is over. */
    void discard() {
        discarded = true;
        for (Stream stream : streams) {
            synchronized (stream) {
                for (Queued queued : stream.queued.values()) {
                    held.addAndGet(-queued.data().readableBytes());
                    queued.data().release();
                }
                stream.queued.clear();
            }
        }
    }

    private Stream stream(int index) throws MigrationFailure {
        if (index < 0 || index >= streams.size()) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "device index " + index + " of a VM with " + streams.size() + " devices");
        }
        return streams.get(index);
    }

    /** A failure found on an event loop: the flow learns of it from its replies; nothing more is loaded. */
    private void fail(MigrationFailure failure) {
        if (!failed) {
            firstFailure = failure;
            failed = true;
            replies.add(new PeerReplies.Failed(failure));
            abandon.run();
        }
    }
}
