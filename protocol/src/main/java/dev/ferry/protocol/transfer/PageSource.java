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
}
