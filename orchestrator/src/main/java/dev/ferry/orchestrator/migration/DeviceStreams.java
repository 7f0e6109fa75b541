package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.device.migration.InitialData;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.transfer.RateLimiter;
import io.netty.buffer.ByteBuf;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The source's side of every device's migration data (SPEC §2, F10): reads what each device has
 * ready in its data window (W1) and sends it in DEVICE_DATA frames on the data channels beside the
 * pages, each chunk with its offset in that device's stream, on the channel {@link #channelOf} names.
 * At the end of stop-and-copy it reads every stream to its end and sends DEVICE_END on the control
 * channel.
 *
 * <p>Devices are read in {@link #lanes()} lanes at once, as many as there are data channels: a device's
 * stream is loaded in order on the destination, one chunk after another, so only several devices
 * moving at once let the destination load on several event loops. Each lane owns its devices'
 * positions; nothing below is shared between lanes but the channels and the announcement count. With
 * at least as many devices as channels, lane {@code l} reads exactly the devices channel {@code l}
 * carries.
 *
 * <p>F7: when a device's round of initial data has all been read (W4, W8), DEVICE_INITIAL tells the
 * destination where in the stream it ends; the destination acknowledges once it has loaded that far.
 */
final class DeviceStreams {
    private static final int CHUNK = Frame.DeviceData.MAX_CHUNK_BYTES;

    private final List<Device> devices;
    private final FrameChannel control;
    private final List<FrameChannel> data;
    private final RateLimiter limiter;
    private final long[] offsets;
    private final long[] chunks;
    /** The latest round of initial data announced per device, -1 for none. */
    private final long[] announcedGeneration;
    private final AtomicLong announced = new AtomicLong();
    /** Per device: bytes streamed in stop-and-copy, and the time spent reading them from the device (F6). */
    private final long[] stopCopyBytes;
    private final long[] saveNanos;
    /** Per device: when its stop-and-copy data began to be read and when its DEVICE_END left (F6's trace). */
    private final long[] stopCopyStart;
    private final long[] stopCopyEnd;

    DeviceStreams(List<Device> devices, FrameChannel control, List<FrameChannel> data, RateLimiter limiter) {
        this.devices = List.copyOf(devices);
        this.control = control;
        this.data = List.copyOf(data);
        this.limiter = limiter;
        this.offsets = new long[devices.size()];
        this.chunks = new long[devices.size()];
        this.announcedGeneration = new long[devices.size()];
        java.util.Arrays.fill(announcedGeneration, -1);
        this.stopCopyBytes = new long[devices.size()];
        this.saveNanos = new long[devices.size()];
        this.stopCopyStart = new long[devices.size()];
        this.stopCopyEnd = new long[devices.size()];
    }

    /** DEVICE_INITIAL frames sent so far: the switchover is acknowledged once the destination covers them all (F7). */
    long announced() {
        return announced.get();
    }

    /**
     * F7: every device's current round of initial data has been read and announced (a device without
     * initial data counts as done). A device that re-initialised since (W8) has not.
     */
    boolean initialDataAnnounced() {
        for (int index = 0; index < devices.size(); index++) {
            InitialData initial = devices.get(index).initialData();
            boolean none = initial.endOffset() == 0;
            if (!none && (!initial.complete() || announcedGeneration[index] < initial.generation())) {
                return false;
            }
        }
        return true;
    }

    /** Bytes of device {@code index}'s stream sent in stop-and-copy. */
    long stopCopyBytes(int index) {
        return stopCopyBytes[index];
    }

    /** Time spent reading device {@code index}'s stop-and-copy data from it. */
    long saveNanos(int index) {
        return saveNanos[index];
    }

    /** When device {@code index}'s stop-and-copy data began to be read ({@link System#nanoTime()}). */
    long stopCopyStart(int index) {
        return stopCopyStart[index];
    }

    /** When device {@code index}'s stream ended (DEVICE_END sent). */
    long stopCopyEnd(int index) {
        return stopCopyEnd[index];
    }

    /**
     * F10: the data channel that carries chunk {@code chunk} of device {@code device}, the same rule on
     * both sides (the destination refuses a chunk that came on another). With at least as many devices
     * as channels, all of a device's chunks go on channel {@code device mod channels}: each lane then
     * feeds one channel and each channel brings whole devices, so the destination loads a device on the
     * one event loop that receives it, in the order TCP keeps, and no two loops ever pass one device's
     * chunks to each other. Spread over every channel instead, four 256 MiB GPUs moved 0.69-0.87x as
     * fast over two channels as over one; kept to one, 0.99-1.23x, on two cores whose load allowed at
     * most 1.26-1.41x. With fewer devices than channels, chunk {@code k} goes on
     * {@code (device + k) mod channels}, so that even one device moves over every channel.
     */
    static int channelOf(int device, long chunk, int devices, int channels) {
        if (devices >= channels) {
            return device % channels;
        }
        return (int) ((device + chunk) % channels);
    }

    /** How many lanes read devices at once: one per data channel, at most one per device. */
    int lanes() {
        return Math.max(1, Math.min(devices.size(), data.size()));
    }

    /**
     * Sends what each device of {@code lane} (every {@link #lanes()}-th device from the lane's index) has
     * ready now, and no more: a device that dirties its memory as fast as the link drains it would
     * otherwise keep a pass going for ever, and the pass's end is where convergence is judged and the
     * devices' work slowed (F9). With {@code toEnd} (stop-and-copy, where 0 pending is the end of the
     * stream), everything to the end, then DEVICE_END.
     *
     * @return the bytes sent
     */
    long drain(int lane, boolean toEnd) throws ProtocolException, MigrationFailure, InterruptedException {
        long total = 0;
        for (int index = lane; index < devices.size(); index += lanes()) {
            Device device = devices.get(index);
            long before = offsets[index];
            long reading = 0;
            if (toEnd) {
                stopCopyStart[index] = System.nanoTime();
            }
            // W1: what is ready as the pass reaches the device; the chunk that crosses it is sent whole.
            long budget = toEnd ? Long.MAX_VALUE : device.pendingBytes();
            while (offsets[index] - before < budget) {
                ByteBuf chunk = control.channel().alloc().directBuffer(CHUNK);
                int n;
                long start = System.nanoTime();
                try {
                    n = device.readWindow(chunk.nioBuffer(0, CHUNK));
                } catch (Device.WindowReadFailed e) {
                    chunk.release();
                    throw new MigrationFailure(MigrationFailure.DEVICE_SAVE_FAILED, "device " + device.id() + ": " + e.getMessage());
                } catch (RuntimeException e) {
                    chunk.release();
                    throw e;
                }
                reading += System.nanoTime() - start;
                if (n == 0) {
                    chunk.release();
                    break;
                }
                chunk.writerIndex(n);
                FrameChannel channel = data.get(channelOf(index, chunks[index], devices.size(), data.size()));
                try {
                    limiter.acquire(Frame.DeviceData.WIRE_OVERHEAD + n);
                } catch (InterruptedException e) {
                    chunk.release();
                    throw e;
                }
                channel.sendWhenWritable(new Frame.DeviceData(index, offsets[index], chunk));
                offsets[index] += n;
                chunks[index]++;
                total += n;
            }
            if (toEnd) {
                if (!device.streamFinished()) {
                    throw new MigrationFailure(MigrationFailure.INTERNAL, device.id() + " did not end its stream in stop-and-copy");
                }
                stopCopyBytes[index] = offsets[index] - before;
                saveNanos[index] = reading;
                control.sendWhenWritable(new Frame.DeviceEnd(index, offsets[index]));
                stopCopyEnd[index] = System.nanoTime();
            } else {
                announceInitialData(index, device);
            }
        }
        return total;
    }

    /** F7, W8: a round of initial data read to its end is announced once. */
    private void announceInitialData(int index, Device device) throws ProtocolException, InterruptedException {
        InitialData initial = device.initialData();
        if (initial.complete() && initial.endOffset() > 0 && initial.generation() > announcedGeneration[index]
                && offsets[index] >= initial.endOffset()) {
            control.sendWhenWritable(new Frame.DeviceInitial(index, initial.generation(), initial.endOffset()));
            announcedGeneration[index] = initial.generation();
            announced.incrementAndGet();
        }
    }
}
