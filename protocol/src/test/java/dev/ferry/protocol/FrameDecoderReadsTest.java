package dev.ferry.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.channel.ChannelConfig;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.channel.embedded.EmbeddedChannel;
import org.junit.jupiter.api.Test;

/**
 * A data channel's turn on its event loop is bounded in bytes: a channel taking scattered pages (a read a
 * page) gets about as many bytes a turn as one taking runs of pages (a read a frame), so one session's
 * last pass does not wait behind another's bulk pages.
 */
class FrameDecoderReadsTest {
    @Test
    void aTurnEndsAtItsBytesWhateverEachReadWasWorth() {
        EmbeddedChannel channel = new EmbeddedChannel();
        try {
            RecvByteBufAllocator.Handle handle = new FrameDecoder().reads().newHandle();
            assertThat(readsInOneTurn(handle, channel.config(), 256 << 10)).as("runs: a frame a read").isEqualTo(4);
            assertThat(readsInOneTurn(handle, channel.config(), 4096)).as("scattered pages: a page a read").isEqualTo(256);
            assertThat(readsInOneTurn(handle, channel.config(), 16)).as("small reads, bounded in number")
                    .isEqualTo(FrameDecoder.READS_PER_TURN);
        } finally {
            channel.finishAndReleaseAll();
        }
    }

    /** Reads of {@code bytesPerRead} each, every one filling what it was offered, until the handle says stop. */
    private static int readsInOneTurn(RecvByteBufAllocator.Handle handle, ChannelConfig config, int bytesPerRead) {
        handle.reset(config);
        int reads = 0;
        do {
            handle.attemptedBytesRead(bytesPerRead);
            handle.lastBytesRead(bytesPerRead);
            handle.incMessagesRead(1);
            reads++;
        } while (handle.continueReading() && reads <= FrameDecoder.READS_PER_TURN);
        handle.readComplete();
        return reads;
    }
}
