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
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The destination's side of every device's data (F10, W7, F7). Chunks arrive on the data channels
 * beside the pages, a device's chunks spread over all of them: chunk {@code k} of device {@code d} on
 * channel {@code (d + k) mod n}. Each device's chunks are loaded into its window in stream order as
 * they arrive (W7), on the event loop that brought them; a chunk that came early waits, and the
 * amount waiting is bounded: above {@link #HIGH} bytes a channel that brings more early data stops
 * being read, unless it is the one that carries a device's next chunk, so the stream always moves on.
 *
 * <p>F7: the source announces where each round of a device's initial data ends (DEVICE_INITIAL); once
 * every device has loaded up to its latest announced end, the destination acknowledges the switchover
 * (SWITCHOVER_ACK with the number of announcements it covers), until PREPARE.
 */
final class IncomingDevices {
    /** Early chunks held for all devices together, above which channels bringing more are paused. */
    static final long HIGH = 64L << 20;
    private static final long LOW = 16L << 20;

    /** One device's stream as it arrives. Guarded by itself. */
    private static final class Stream {
        final Device device;
        final int index;
        /** The next byte of the stream to load, and the number of chunks loaded. */
        long expected;
        long chunks;
        /** Chunks that came before their turn, by offset, and the channel each came on. */
        final TreeMap<Long, Early> early = new TreeMap<>();
        long loadNanos;
        /** DEVICE_END's total, or -1 before it. */
        long total = -1;
        /** The end of the latest round of initial data announced (F7), or -1 for none. */
        long initialEnd = -1;

        Stream(Device device, int index) {
            this.device = device;
            this.index = index;
        }
    }

    private record Early(ByteBuf data, int channel) {
    }

    private final List<Stream> streams = new ArrayList<>();
    private final int channels;
    private final FrameChannel control;
    private final Migration migration;
    private final FerryMetrics metrics;
    private final Supplier<String> phase;
    private final FlowHooks hooks;
    private final PeerReplies replies;
    private final AtomicLong held = new AtomicLong();
    private final Set<FrameChannel> paused = ConcurrentHashMap.newKeySet();
    private final Runnable abandon;
    private volatile boolean failed;
    private volatile MigrationFailure firstFailure;
    // Guarded by this: announcements received and acknowledged, and whether acknowledging is over.
    private long announced;
    private long acknowledged;
    private boolean prepared;

    /** @param abandon ends the flow's waits on the data channels when a device's data fails */
    IncomingDevices(List<Device> devices, int channels, FrameChannel control, Migration migration, FerryMetrics metrics,
                    Supplier<String> phase, FlowHooks hooks, PeerReplies replies, Runnable abandon) {
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
    }

    /**
     * A chunk arrived on a data channel; on its event loop. Takes the chunk: it is loaded now, or kept
     * until its turn, or released if the migration already failed.
     */
    void chunk(FrameChannel channel, Frame.DeviceData chunk) {
        int device = chunk.device();
        if (failed || device < 0 || device >= streams.size()) {
            chunk.release();
            if (!failed) {
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
        boolean early;
        synchronized (stream) {
            if (chunk.offset() < stream.expected || stream.early.containsKey(chunk.offset())
                    || (stream.total >= 0 && chunk.offset() + bytes > stream.total)) {
                chunk.release();
                fail(new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "data of device " + stream.device.id() + " at offset "
                        + chunk.offset() + " again, or past its end"));
                return;
            }
            early = chunk.offset() > stream.expected;
            if (early) {
                stream.early.put(chunk.offset(), new Early(chunk.content(), channel.index()));
                held.addAndGet(bytes);
            } else {
                loadInOrder(stream, chunk.content(), channel.index());
            }
        }
        // Decided holding no stream: the check looks at every stream.
        if (early && held.get() > HIGH && !carriesANextChunk(channel.index())) {
            paused.add(channel);
            channel.pauseReading();
        }
        resumeWhereNeeded();
        acknowledgeIfLoaded();
    }

    /** Loads a chunk that is the stream's next, then every early one whose turn that makes. Holding the stream. */
    private void loadInOrder(Stream stream, ByteBuf data, int channel) {
        try {
            load(stream, data, channel);
        } finally {
            data.release();
        }
        for (Map.Entry<Long, Early> next = stream.early.firstEntry(); next != null && next.getKey() == stream.expected && !failed;
             next = stream.early.firstEntry()) {
            stream.early.pollFirstEntry();
            Early early = next.getValue();
            held.addAndGet(-early.data().readableBytes());
            try {
                load(stream, early.data(), early.channel());
            } finally {
                early.data().release();
            }
        }
    }

    /** Loads the stream's next chunk into its device's window (W7). Called holding the stream. */
    private void load(Stream stream, ByteBuf data, int channel) {
        if (failed) {
            return;
        }
        int route = (int) ((stream.index + stream.chunks) % channels);
        if (channel != route) {
            fail(new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "chunk " + stream.chunks + " of device " + stream.device.id()
                    + " came on data channel " + channel + ", not " + route));
            return;
        }
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
        stream.loadNanos += System.nanoTime() - start;
        stream.expected += bytes;
        stream.chunks++;
        migration.deviceData(stream.device.id(), bytes);
        if (written instanceof WindowWrite.Failed failed) {
            // D8, only earlier (W7): the device is in ERROR and the migration cannot go on.
            fail(new MigrationFailure(MigrationFailure.DEVICE_LOAD_FAILED, "device " + stream.device.id() + " could not load its data: "
                    + failed.describe()));
        }
    }

    /** Whether {@code channel} carries some device's next chunk: pausing it could stall that stream. */
    private boolean carriesANextChunk(int channel) {
        for (Stream stream : streams) {
            synchronized (stream) {
                boolean waiting = stream.total < 0 || stream.expected < stream.total;
                if (waiting && (stream.index + stream.chunks) % channels == channel) {
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
        boolean low = held.get() < LOW;
        for (FrameChannel channel : paused) {
            if ((low || carriesANextChunk(channel.index())) && paused.remove(channel)) {
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
     * Every device's stream arrived to its end (DEVICE_END's total), and nothing waits out of order. A stream that
     * failed to load is the answer first: the data after its failure was dropped, so the streams are incomplete
     * because of it, and PREPARE may come before the failure's reply was taken.
     */
    MigrationFailure incomplete() {
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
        for (Stream stream : streams) {
            synchronized (stream) {
                stream.early.values().forEach(early -> early.data().release());
                stream.early.clear();
            }
        }
        held.set(0);
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
