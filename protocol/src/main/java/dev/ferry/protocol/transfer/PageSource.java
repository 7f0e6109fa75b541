package dev.ferry.protocol.transfer;

import java.nio.ByteBuffer;

/** Where the sender reads pages. */
@FunctionalInterface
public interface PageSource {
    /**
     * The page's 4096 bytes from the returned buffer's position, or {@code null} when the page is
     * all zeros (it is then sent as a flag without bytes).
     */
    ByteBuffer page(long index);

    /**
     * The bytes of {@code count} consecutive pages from {@code first}, from the returned buffer's
     * position, when they lie in one piece of memory; {@code null} otherwise. Only asked for pages
     * that {@link #page} gave as not zero, and only when they are sent without a copy: a run then
     * goes out as one buffer instead of one per page.
     */
    default ByteBuffer run(long first, int count) {
        return null;
    }

    /**
     * How many consecutive pages from {@code first} are known to be zero without reading them (memory
     * never written); 0 when unknown. A stretch of them goes as one ZERO_PAGES frame per channel.
     */
    default long zeroStretch(long first) {
        return 0;
    }
}
