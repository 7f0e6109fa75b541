package dev.ferry.protocol.capture;

import dev.ferry.protocol.FrameHeader;
import dev.ferry.protocol.net.FrameChannel;
import io.netty.buffer.ByteBuf;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One capture file being written: the session's frames, as the {@link CaptureTap}s on its channels see
 * them, go through a bounded queue to a thread of the capture's own, which writes them to the sink.
 *
 * <p>Capturing never slows the migration: the event loops only copy a frame's bytes into a record and
 * queue it, and when the queue holds {@code maxQueuedBytes} (the writer is behind, the disk is slow) a
 * frame is dropped instead, never waited for; the file then says so (a GAP record where frames are
 * missing, and the counts in its END record). A sink that fails ends the capture, not the migration.
 *
 * <p>{@link #finish} does not wait either: the writer thread waits, at most {@value #CHANNEL_WAIT_MILLIS}
 * ms, for the taps to see their channels close (so the session's last frames are in), writes what is
 * queued, the END record, and closes the sink.
 */
public final class CaptureWriter {
    /** What a capture holds in memory at most, waiting for its file, unless told otherwise. */
    public static final long DEFAULT_QUEUE_BYTES = 16L << 20;
    /** How long the writer waits, once the capture is finished, for its channels to close. */
    static final long CHANNEL_WAIT_MILLIS = 2_000;
    /** Records written in one system call, at most. */
    private static final int BATCH = 64;
    private static final System.Logger LOG = System.getLogger(CaptureWriter.class.getName());

    /**
     * What a capture has done so far: frames written and their bytes on the wire, bytes written to the
     * file, frames dropped (and their bytes on the wire) because the writer was behind or had failed,
     * whether the file is closed, and why the capture failed, if it did.
     */
    public record Stats(long frames, long wireBytes, long fileBytes, long droppedFrames, long droppedBytes, boolean closed,
                        String error) {
    }

    private final WritableByteChannel sink;
    private final CaptureHeader header;
    private final long startNanos;
    private final long maxQueuedBytes;
    private final AtomicLong queuedBytes = new AtomicLong();
    private final AtomicLong droppedFrames = new AtomicLong();
    private final AtomicLong droppedBytes = new AtomicLong();
    private final Object lock = new Object();
    // Guarded by lock.
    private final ArrayDeque<ByteBuf> queue = new ArrayDeque<>();
    private boolean accepting = true;
    /** Taps attached whose channel has not ended yet: the writer waits for them once finished. */
    private final Set<CaptureTap> taps = ConcurrentHashMap.newKeySet();
    private final CountDownLatch closed = new CountDownLatch(1);
    private final Thread thread;
    private volatile boolean stopped;
    private volatile boolean finishing;
    private volatile long finishedAt;
    private volatile String outcome = "";
    private volatile String error;
    // Written by the writer thread only.
    private volatile long frames;
    private volatile long wireBytes;
    private volatile long fileBytes;

    private CaptureWriter(WritableByteChannel sink, CaptureHeader header, long startNanos, long maxQueuedBytes, String threadName) {
        this.sink = sink;
        this.header = header;
        this.startNanos = startNanos;
        this.maxQueuedBytes = maxQueuedBytes;
        this.thread = new Thread(this::run, threadName);
        this.thread.setDaemon(true);
    }

    /**
     * Starts a capture into {@code sink}, which it closes when done.
     *
     * @param startNanos     the capture's time zero on {@link System#nanoTime()}'s clock: records' times count from it
     * @param maxQueuedBytes records held in memory at most; beyond that frames are dropped
     */
    public static CaptureWriter start(WritableByteChannel sink, CaptureHeader header, long startNanos, long maxQueuedBytes,
                                      String threadName) {
        CaptureWriter writer = new CaptureWriter(sink, header, startNanos, maxQueuedBytes, threadName);
        writer.thread.start();
        return writer;
    }

    public CaptureHeader header() {
        return header;
    }

    /** Captures {@code channel}'s frames from now on, both ways. */
    public CaptureTap tap(FrameChannel channel) {
        return CaptureTap.install(channel, this);
    }

    /**
     * The session is over: once its channels have closed (at most {@value #CHANNEL_WAIT_MILLIS} ms from
     * now), the rest is written with an END record saying {@code how} it ended, and the file is closed.
     * Returns at once.
     */
    public void finish(String how) {
        if (finishing) {
            return;
        }
        outcome = how == null ? "" : how;
        finishedAt = System.nanoTime();
        finishing = true;
        synchronized (lock) {
            lock.notifyAll();
        }
    }

    /** Waits until the file is closed; returns whether it is. */
    public boolean awaitClosed(long timeout, TimeUnit unit) throws InterruptedException {
        return closed.await(timeout, unit);
    }

    public Stats stats() {
        return new Stats(frames, wireBytes, fileBytes, droppedFrames.get(), droppedBytes.get(), closed.getCount() == 0, error);
    }

    // ---- for the taps, on their event loops: never waits --------------------------------------

    boolean pageData() {
        return header.pageData();
    }

    void attached(CaptureTap tap) {
        taps.add(tap);
    }

    void detached(CaptureTap tap) {
        taps.remove(tap);
    }

    /** Takes {@code bytes} of the queue's room for a record about to be built; false when there is none. */
    boolean reserve(int bytes) {
        if (stopped) {
            return false;
        }
        while (true) {
            long now = queuedBytes.get();
            if (now + bytes > maxQueuedBytes) {
                return false;
            }
            if (queuedBytes.compareAndSet(now, now + bytes)) {
                return true;
            }
        }
    }

    /** Gives back room taken for a record that was never queued. */
    void unreserve(int bytes) {
        queuedBytes.addAndGet(-bytes);
    }

    /** Queues a record built in {@code reserved} bytes of room (it may use less). */
    void offer(ByteBuf record, int reserved) {
        queuedBytes.addAndGet(record.readableBytes() - reserved);
        enqueue(record);
    }

    /** Queues a small record whatever the queue holds: a GAP record, or what a tap held before it was attached. */
    void offerAnyway(ByteBuf record) {
        queuedBytes.addAndGet(record.readableBytes());
        enqueue(record);
    }

    /** Frames of {@code bytes} on the wire in all that are not captured. */
    void dropped(long count, long bytes) {
        if (count == 0 || (stopped && error == null)) {
            // After the end: the session is over, nothing of it is missing.
            return;
        }
        droppedFrames.addAndGet(count);
        droppedBytes.addAndGet(bytes);
    }

    private void enqueue(ByteBuf record) {
        synchronized (lock) {
            if (accepting) {
                queue.add(record);
                lock.notifyAll();
                return;
            }
        }
        queuedBytes.addAndGet(-record.readableBytes());
        if (error != null && record.getUnsignedByte(0) == CaptureFormat.FRAME) {
            dropped(1, wireBytesOf(record));
        }
        record.release();
    }

    // ---- the writer thread ---------------------------------------------------------------------

    private void run() {
        try {
            write(header.encode());
            while (true) {
                List<ByteBuf> batch = take();
                if (!batch.isEmpty()) {
                    write(batch);
                } else if (finishing && (taps.isEmpty()
                        || System.nanoTime() - finishedAt > TimeUnit.MILLISECONDS.toNanos(CHANNEL_WAIT_MILLIS))) {
                    break;
                }
            }
            write(stopAccepting());
            write(end());
        } catch (IOException | RuntimeException e) {
            error = e.getMessage() == null ? e.toString() : e.getMessage();
            LOG.log(System.Logger.Level.WARNING, "capture " + thread.getName() + " failed, the migration goes on without it: " + error);
            stopAccepting().forEach(ByteBuf::release);
        } catch (InterruptedException e) {
            error = "interrupted";
            stopAccepting().forEach(ByteBuf::release);
        } finally {
            try {
                sink.close();
            } catch (IOException e) {
                if (error == null) {
                    error = e.getMessage();
                }
            }
            closed.countDown();
        }
    }

    /** Up to a batch of records, waiting a little for the first. */
    private List<ByteBuf> take() throws InterruptedException {
        synchronized (lock) {
            if (queue.isEmpty()) {
                lock.wait(50);
            }
            List<ByteBuf> batch = new ArrayList<>(Math.min(BATCH, queue.size()));
            while (batch.size() < BATCH && !queue.isEmpty()) {
                batch.add(queue.poll());
            }
            return batch;
        }
    }

    /** From here on every record offered is released at once; returns what was queued. */
    private List<ByteBuf> stopAccepting() {
        synchronized (lock) {
            stopped = true;
            accepting = false;
            List<ByteBuf> rest = new ArrayList<>(queue);
            queue.clear();
            return rest;
        }
    }

    /** Writes records and releases them, all of them whatever happens. */
    private void write(List<ByteBuf> records) throws IOException {
        try {
            ByteBuffer[] buffers = new ByteBuffer[records.size()];
            long total = 0;
            for (int i = 0; i < records.size(); i++) {
                ByteBuf record = records.get(i);
                // Records carry the event loop's clock; the file counts from the capture's start.
                record.setLong(4, Math.max(0, record.getLong(4) - startNanos));
                buffers[i] = record.nioBuffer();
                total += buffers[i].remaining();
            }
            writeFully(buffers, total);
            for (ByteBuf record : records) {
                queuedBytes.addAndGet(-record.readableBytes());
                if (record.getUnsignedByte(0) == CaptureFormat.FRAME) {
                    frames++;
                    wireBytes += wireBytesOf(record);
                }
            }
        } finally {
            records.forEach(ByteBuf::release);
        }
    }

    /** A frame record's frame on the wire, as its header says (what of the header was captured). */
    private static long wireBytesOf(ByteBuf record) {
        int at = CaptureFormat.RECORD_HEADER_BYTES + 1;
        return record.readableBytes() < at + 4 ? record.readableBytes() - at : FrameHeader.BYTES + record.getUnsignedInt(at);
    }

    private void write(ByteBuffer buffer) throws IOException {
        writeFully(new ByteBuffer[] {buffer}, buffer.remaining());
    }

    private void writeFully(ByteBuffer[] buffers, long total) throws IOException {
        long written = 0;
        int first = 0;
        while (written < total) {
            long n;
            if (sink instanceof GatheringByteChannel gathering) {
                n = gathering.write(buffers, first, buffers.length - first);
            } else {
                n = sink.write(buffers[first]);
            }
            written += n;
            while (first < buffers.length && !buffers[first].hasRemaining()) {
                first++;
            }
        }
        fileBytes += total;
    }

    private ByteBuffer end() {
        byte[] how = outcome.getBytes(StandardCharsets.UTF_8);
        int length = Math.min(how.length, 1024);
        ByteBuffer end = ByteBuffer.allocate(CaptureFormat.RECORD_HEADER_BYTES + CaptureFormat.END_BODY_BYTES + length);
        end.put((byte) CaptureFormat.END).put((byte) 0).put((byte) 0).put((byte) 0)
                .putLong(Math.max(0, System.nanoTime() - startNanos)).putInt(CaptureFormat.END_BODY_BYTES + length)
                .putLong(frames).putLong(wireBytes).putLong(droppedFrames.get()).putLong(droppedBytes.get())
                .putShort((short) length).put(how, 0, length);
        return end.flip();
    }
}
