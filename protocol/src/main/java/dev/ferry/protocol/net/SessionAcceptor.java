package dev.ferry.protocol.net;

import dev.ferry.protocol.ProtocolException;

/**
 * The server's application side: called once a channel has authenticated, never before, so nothing
 * is allocated for a peer that has not proven the token.
 */
public interface SessionAcceptor {

    /** A control channel opens a session; return its handler, or throw to refuse with a code. */
    FrameHandler acceptControl(FrameChannel channel) throws ProtocolException;

    /**
     * A data channel joins its session; return its handler, or throw (e.g. UNKNOWN_SESSION). Set the
     * channel's {@link FrameChannel#setPageRouting page routing} before returning.
     */
    FrameHandler acceptData(FrameChannel channel) throws ProtocolException;
}
