package dev.ferry.protocol.transfer;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.FrameHandler;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntConsumer;

/**
 * The destination's handler of one data channel: every page of a checked PAGES frame goes to the
 * sink (one copy, into its final place), then the frame is released. Completes when the channel's
 * CHANNEL_END arrives, with the number of pages it carried, or fails when the channel breaks.
 */
public final class PageReceiver implements FrameHandler {
    private final PageSink sink;
    private final IntConsumer iterationEnded;
    private final CompletableFuture<Long> ended = new CompletableFuture<>();
    private final AtomicLong pages = new AtomicLong();
    private final AtomicLong bytes = new AtomicLong();

    /**
     * @param iterationEnded told the iteration number each time this channel ends one (DATA_END)
     */
    public PageReceiver(PageSink sink, IntConsumer iterationEnded) {
        this.sink = sink;
        this.iterationEnded = iterationEnded;
    }

    public PageReceiver(PageSink sink) {
        this(sink, iteration -> {
        });
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
                run.forEach(sink::page);
                pages.addAndGet(run.count());
                bytes.addAndGet(run.content().readableBytes());
            } finally {
                run.release();
            }
        } else if (frame instanceof Frame.DataEnd end) {
            iterationEnded.accept(end.iteration());
        } else if (frame instanceof Frame.ChannelEnd end) {
            ended.complete(end.pages());
        } else if (frame instanceof Frame.Abort abort) {
            ended.completeExceptionally(new ProtocolException(abort.code(), "source aborted: " + abort.message()));
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
