package dev.ferry.protocol.transfer;

import java.nio.ByteBuffer;

/**
 * Where a data channel's decoder may read page bytes straight from the socket: the destination's
 * memory itself, so that a page costs one kernel copy and no copy in user space. Called on the channel's
 * event loop; must not block.
 */
public interface PagePlacement {
    /**
     * A writable view of the {@code count} consecutive pages from {@code first}, from position 0, when
     * they lie in one piece of memory and belong on this channel; {@code null} otherwise (the frame is
     * then read whole and its pages copied into place, and the session's rules judge it).
     */
    ByteBuffer target(long first, int count);

    /** The bytes of these pages were written through a view from {@link #target}. */
    void placed(long first, int count);
}
