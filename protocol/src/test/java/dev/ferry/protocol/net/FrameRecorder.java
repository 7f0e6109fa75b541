package dev.ferry.protocol.net;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.ProtocolException;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** A client-side handler for protocol tests: records the frames that arrive and how the channel closed. */
final class FrameRecorder implements FrameHandler {
    final BlockingQueue<Frame> frames = new LinkedBlockingQueue<>();
    final CompletableFuture<ProtocolException> closed = new CompletableFuture<>();

    @Override
    public void frameReceived(FrameChannel channel, Frame frame) {
        frames.add(frame);
    }

    @Override
    public void channelClosed(FrameChannel channel, ProtocolException cause) {
        closed.complete(cause);
    }

    /** The next ABORT, frames before it passed over; null if none comes within 30 s. */
    Frame.Abort abort() throws InterruptedException {
        while (true) {
            Frame frame = frames.poll(30, TimeUnit.SECONDS);
            if (frame == null || frame instanceof Frame.Abort) {
                return (Frame.Abort) frame;
            }
        }
    }
}
