package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.transfer.RateLimiter;
import io.netty.buffer.ByteBuf;
import java.util.List;

/**
 * The source's side of every device's migration data (SPEC §2): reads what each device has ready in
 * its data window (W1) and sends it in DEVICE_DATA frames, in order, with the offset of each chunk in
 * that device's stream; at the end of stop-and-copy, to the end of every stream and DEVICE_END.
 * Each frame waits for the session's rate limit and for the channel to be writable.
 */
final class DeviceStreams {
    private static final int CHUNK = Frame.DeviceData.MAX_CHUNK_BYTES;

    private final List<Device> devices;
    private final FrameChannel channel;
    private final RateLimiter limiter;
    private final long[] offsets;

    DeviceStreams(List<Device> devices, FrameChannel channel, RateLimiter limiter) {
        this.devices = List.copyOf(devices);
        this.channel = channel;
        this.limiter = limiter;
        this.offsets = new long[devices.size()];
    }

    /** Bytes of {@code device}'s stream sent so far. */
    long sent(int device) {
        return offsets[device];
    }

    /**
     * Sends what each device has ready now; with {@code toEnd} (stop-and-copy, where 0 pending is the
     * end of the stream), everything to the end, then DEVICE_END.
     *
     * @return the bytes sent
     */
    long drain(boolean toEnd) throws ProtocolException, MigrationFailure, InterruptedException {
        long total = 0;
        for (int index = 0; index < devices.size(); index++) {
            Device device = devices.get(index);
            while (true) {
                ByteBuf chunk = channel.channel().alloc().directBuffer(CHUNK);
                int n;
                try {
                    n = device.readWindow(chunk.nioBuffer(0, CHUNK));
                } catch (RuntimeException e) {
                    chunk.release();
                    throw e;
                }
                if (n == 0) {
                    chunk.release();
                    break;
                }
                chunk.writerIndex(n);
                try {
                    limiter.acquire(Frame.DeviceData.WIRE_OVERHEAD + n);
                } catch (InterruptedException e) {
                    chunk.release();
                    throw e;
                }
                channel.sendWhenWritable(new Frame.DeviceData(index, offsets[index], chunk));
                offsets[index] += n;
                total += n;
            }
            if (toEnd) {
                if (!device.streamFinished()) {
                    throw new MigrationFailure(MigrationFailure.INTERNAL, device.id() + " did not end its stream in stop-and-copy");
                }
                channel.sendWhenWritable(new Frame.DeviceEnd(index, offsets[index]));
            }
        }
        return total;
    }
}
