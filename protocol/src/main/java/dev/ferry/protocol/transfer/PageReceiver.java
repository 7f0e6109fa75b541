package dev.ferry.protocol.transfer;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PageRouting;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.FrameHandler;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The destination's handler of one data channel: every page of a PAGES frame goes to the sink (checked
 * against its CRC; for a frame that was not placed, one copy into its final place), then the frame is
 * released. Completes when the channel's
 * CHANNEL_END arrives, with the number of pages it carried, or fails when the channel breaks.
 */
public final class PageReceiver implements FrameHandler {
    /** Told each time the channel ends an iteration (DATA_END), after every page of it was applied. */
    @FunctionalInterface
    public interface IterationListener {
        void ended(int iteration, long pages);
    }

    private final Frame.Pages.PageVisitor sink;
    private final IterationListener iterationEnded;
    private final CompletableFuture<Long> ended = new CompletableFuture<>();
    private final AtomicLong pages = new AtomicLong();
    private final AtomicLong bytes = new AtomicLong();

    /**
     * @param iterationEnded told the iteration and its page count on this channel each time the channel
     *                       ends one (DATA_END)
     */
    public PageReceiver(Frame.Pages.PageVisitor sink, IterationListener iterationEnded) {
        this.sink = sink;
        this.iterationEnded = iterationEnded;
    }

    public PageReceiver(Frame.Pages.PageVisitor sink) {
        this(sink, (iteration, pages) -> {
        });
    }

    /** Pages go to {@code sink}; a torn page fails the channel's frame (see {@link PageSink#strict}). */
    public PageReceiver(PageSink sink) {
        this(sink.strict());
    }

    /** Completes with the channel's page count at CHANNEL_END; fails if the channel breaks first. */
    public CompletableFuture<Long> ended() {
        return ended;
    }

    public long pages() {
        return pages.get();
    }

    /** Payload bytes received in PAGES frames. */
    public long bytes() {
        return bytes.get();
    }

    @Override
    public void frameReceived(FrameChannel channel, Frame frame) {
        if (frame instanceof Frame.Pages run) {
            try {
                run.forEach(sink);
                pages.addAndGet(run.count());
                bytes.addAndGet(run.wireBytes() - dev.ferry.protocol.FrameHeader.BYTES);
            } finally {
                run.release();
            }
        } else if (frame instanceof Frame.ZeroPages zero) {
            PageRouting routing = channel.pageRouting();
            PageRouting.forEachStretch(zero.first(), zero.count(), routing.channelIndex(), routing.channels(), sink::zeroStretch);
            pages.addAndGet(zero.pages());
        } else if (frame instanceof Frame.DataEnd end) {
            iterationEnded.ended(end.iteration(), end.pages());
        } else if (frame instanceof Frame.ChannelEnd end) {
            ended.complete(end.pages());
        } else if (frame instanceof Frame.Abort abort) {
            ended.completeExceptionally(new ProtocolException(abort.code(), "source aborted: " + abort.message()));
        } else {
            // As the channel's last handler it owns what arrives: a frame it does not take (device data
            // no one routed elsewhere) is let go, not leaked.
            io.netty.util.ReferenceCountUtil.release(frame);
        }
    }

    @Override
    public void channelClosed(FrameChannel channel, ProtocolException cause) {
        if (cause != null) {
            ended.completeExceptionally(cause);
        } else if (!ended.isDone()) {
            ended.completeExceptionally(new ProtocolException(dev.ferry.protocol.ErrorCode.CONNECTION_LOST,
                    channel + " closed before CHANNEL_END"));
        }
    }
}
