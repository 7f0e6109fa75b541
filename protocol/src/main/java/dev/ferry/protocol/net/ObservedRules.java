package dev.ferry.protocol.net;

import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PageRouting;
import dev.ferry.protocol.ProtocolException;

/**
 * The session rules ({@link FrameRules}) of one channel, checked by an observer that sees both of its
 * directions, as a capture's inspector does: a frame from the source is checked as the destination
 * checks it on arrival, a frame from the destination as the source does, and each end's rules learn
 * what that end sent, in the order the observer saw it. The same rules as on the wire, not a copy of
 * them.
 */
public final class ObservedRules {
    private final FrameRules atDestination;
    private final FrameRules atSource;

    public ObservedRules(ChannelRole role) {
        this.atDestination = new FrameRules(role, true);
        this.atSource = new FrameRules(role, false);
    }

    /** A data channel's routing, which the destination checks every page against (from the VM description). */
    public void setRouting(PageRouting routing) {
        atDestination.setRouting(routing);
    }

    /** A frame the source sent on this channel. */
    public void fromSource(Frame frame) throws ProtocolException {
        atDestination.inbound(frame);
        atSource.outbound(frame);
    }

    /** A frame the destination sent on this channel. */
    public void fromDestination(Frame frame) throws ProtocolException {
        atSource.inbound(frame);
        atDestination.outbound(frame);
    }
}
