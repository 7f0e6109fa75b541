package dev.ferry.protocol.net;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.ProtocolException;

/** Receives an open channel's frames. Keepalives are answered before they get here. */
public interface FrameHandler {

    /**
     * A frame that passed every check. Runs on the channel's event loop: must not block. Must release
     * {@link Frame.Pages} and {@link Frame.DeviceData}.
     */
    void frameReceived(FrameChannel channel, Frame frame);

    /**
     * The channel closed. {@code cause} is {@code null} after an orderly end (a local close, an ABORT
     * or CHANNEL_END received), else why it ended.
     */
    default void channelClosed(FrameChannel channel, ProtocolException cause) {
    }
}
