package dev.ferry.protocol.transfer;

import dev.ferry.protocol.Frame;
import java.nio.ByteBuffer;

/** Where a receiver puts pages. Called on a channel's event loop; must not block. */
@FunctionalInterface
public interface PageSink {
    /**
     * {@code data} holds the page's 4096 bytes from its position, or is {@code null} for a zero page;
     * it is a view valid only during the call.
     */
    void page(long index, ByteBuffer data);

    /**
     * A visitor that gives zero and intact pages to this sink and fails on a torn one: for a receiver
     * whose source does not change its pages while they are sent, where a torn page is damage.
     */
    default Frame.Pages.PageVisitor strict() {
        return new Frame.Pages.PageVisitor() {
            @Override
            public void zero(long index) {
                page(index, null);
            }

            @Override
            public void intact(long index, ByteBuffer data) {
                if (data == null) {
                    throw new IllegalStateException("page " + index + " was placed; a sink takes page bytes");
                }
                page(index, data);
            }

            @Override
            public void torn(long index) {
                throw new IllegalStateException("page " + index + " does not match its CRC");
            }
        };
    }
}
