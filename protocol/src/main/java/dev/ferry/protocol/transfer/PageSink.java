package dev.ferry.protocol.transfer;

import java.nio.ByteBuffer;

/** Where the receiver puts pages. Called on a channel's event loop; must not block. */
@FunctionalInterface
public interface PageSink {
    /**
     * {@code data} holds the page's 4096 bytes from its position, or is {@code null} for a zero page;
     * it is a view valid only during the call.
     */
    void page(long index, ByteBuffer data);
}
