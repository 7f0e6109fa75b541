package dev.ferry.protocol.net;

import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PhaseCode;
import dev.ferry.protocol.PageRouting;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.ChannelRole;

/**
 * What a peer may send on an open channel, and when. The source dials, so the client side of a
 * channel is the source and the server side the destination. Keepalives and ABORT are allowed at
 * any time on any channel; everything else follows the session's order:
 *
 * <pre>
 * control, source to destination:  VM_DESCRIPTION, then DEVICE_END | DEVICE_INITIAL | PHASE | ITERATION_END,
 *                                  then PREPARE, then (after PREPARED) COMMIT
 * control, destination to source:  VM_ACCEPTED (or VM_REFUSED, and nothing after), then ITERATION_DONE(i) for
 *                                  iterations the source ended, in order, and SWITCHOVER_ACK with growing sequences,
 *                                  then (after PREPARE) PREPARED, then (after COMMIT) CONFIRM
 * data, source to destination:     per iteration i = 0, 1, ...: PAGES(i), ZERO_PAGES(i) and DEVICE_DATA..., DATA_END(i, pages);
 *                                  then CHANNEL_END(total)
 * data, destination to source:     nothing else
 * </pre>
 */
final class FrameRules {
    private final ChannelRole role;
    private final boolean destination;

    // Control, destination side.
    private boolean described;
    private boolean prepareReceived;
    private boolean preparedSent;
    private boolean commitReceived;
    // Control, source side.
    private boolean accepted;
    private boolean prepareSent;
    private boolean preparedReceived;
    private boolean commitSent;
    private boolean confirmed;
    private boolean refused;
    private long acknowledged = -1;
    private int iterationEndSent = -1;
    private int iterationDone = -1;
    // Data, destination side.
    private PageRouting routing;
    private int iteration;
    private long iterationPages;
    private long totalPages;
    /**
     * The end of the last ZERO_PAGES range of the iteration: ranges come in ascending order without
     * overlap, so that what they cost the receiver (pages marked and zeroed) is at most the memory's size
     * per iteration, whatever a peer sends.
     */
    private long zeroEnd;
    private boolean channelEnded;

    FrameRules(ChannelRole role, boolean destination) {
        this.role = role;
        this.destination = destination;
    }

    PageRouting routing() {
        return routing;
    }

    void setRouting(PageRouting routing) {
        this.routing = routing;
    }

    /** Checks a frame the peer sent. */
    void inbound(Frame frame) throws ProtocolException {
        if (frame instanceof Frame.Keepalive || frame instanceof Frame.KeepaliveAck || frame instanceof Frame.Abort) {
            return;
        }
        if (role == ChannelRole.CONTROL) {
            if (destination) {
                controlAtDestination(frame);
            } else {
                controlAtSource(frame);
            }
        } else if (destination) {
            dataAtDestination(frame);
        } else {
            throw unexpected(frame, "a data channel carries nothing back to the source");
        }
    }

    /** Notes a frame this side sent. */
    void outbound(Frame frame) {
        if (frame instanceof Frame.Prepared) {
            preparedSent = true;
        } else if (frame instanceof Frame.Prepare) {
            prepareSent = true;
        } else if (frame instanceof Frame.Commit) {
            commitSent = true;
        } else if (frame instanceof Frame.IterationEnd end) {
            iterationEndSent = Math.max(iterationEndSent, end.iteration());
        }
    }

    /** Whether the peer has said this channel is done: CHANNEL_END on a data channel. */
    boolean ended() {
        return channelEnded;
    }

    private void controlAtDestination(Frame frame) throws ProtocolException {
        if (frame instanceof Frame.VmDescription) {
            if (described) {
                throw unexpected(frame, "the VM was already described");
            }
            described = true;
            return;
        }
        if (!described) {
            throw unexpected(frame, "the session starts with VM_DESCRIPTION");
        }
        if (frame instanceof Frame.DeviceData) {
            throw unexpected(frame, "device data travels on the data channels (F10)");
        }
        if (frame instanceof Frame.DeviceEnd || frame instanceof Frame.DeviceInitial || frame instanceof Frame.IterationEnd) {
            if (prepareReceived) {
                throw unexpected(frame, "everything was sent already (PREPARE)");
            }
        } else if (frame instanceof Frame.Phase phase) {
            if (PhaseCode.of(phase.phase()) == null) {
                throw new ProtocolException(ErrorCode.MALFORMED, "unknown phase " + phase.phase());
            }
        } else if (frame instanceof Frame.Prepare) {
            if (prepareReceived) {
                throw unexpected(frame, "PREPARE was already received");
            }
            prepareReceived = true;
        } else if (frame instanceof Frame.Commit) {
            if (!preparedSent || commitReceived) {
                throw unexpected(frame, "COMMIT comes once, after PREPARED");
            }
            commitReceived = true;
        } else {
            throw unexpected(frame, "not a frame a source sends");
        }
    }

    private void controlAtSource(Frame frame) throws ProtocolException {
        if (refused) {
            throw unexpected(frame, "the destination refused the VM; nothing follows");
        }
        if (frame instanceof Frame.VmRefused) {
            if (accepted) {
                throw unexpected(frame, "the VM was already accepted");
            }
            refused = true;
        } else if (frame instanceof Frame.VmAccepted) {
            if (accepted) {
                throw unexpected(frame, "the VM was already accepted");
            }
            accepted = true;
        } else if (frame instanceof Frame.SwitchoverAck ack) {
            if (!accepted || preparedReceived || ack.sequence() <= acknowledged) {
                throw unexpected(frame, "SWITCHOVER_ACK comes after VM_ACCEPTED and before PREPARED, each with a greater sequence (accepted "
                        + accepted + ", prepared " + preparedReceived + ", sequence " + ack.sequence() + " after " + acknowledged + ")");
            }
            acknowledged = ack.sequence();
        } else if (frame instanceof Frame.Prepared) {
            if (!accepted || !prepareSent || preparedReceived) {
                throw unexpected(frame, "PREPARED answers PREPARE, once");
            }
            preparedReceived = true;
        } else if (frame instanceof Frame.Confirm) {
            if (!commitSent || confirmed) {
                throw unexpected(frame, "CONFIRM answers COMMIT, once");
            }
            confirmed = true;
        } else if (frame instanceof Frame.IterationDone done) {
            if (preparedReceived || done.iteration() <= iterationDone || done.iteration() > iterationEndSent) {
                throw unexpected(frame, "ITERATION_DONE answers each ITERATION_END once, in order, before PREPARED");
            }
            iterationDone = done.iteration();
        } else {
            throw unexpected(frame, "not a frame a destination sends");
        }
    }

    private void dataAtDestination(Frame frame) throws ProtocolException {
        if (channelEnded) {
            throw unexpected(frame, "the channel already ended");
        }
        if (frame instanceof Frame.DeviceData) {
            // F10: device data travels beside the pages; the application checks its device and offset.
            return;
        }
        if (frame instanceof Frame.Pages pages) {
            if (routing == null) {
                throw unexpected(frame, "no page routing: the session has not described its VM");
            }
            if (pages.iteration() != iteration) {
                throw new ProtocolException(ErrorCode.OUT_OF_ORDER, "pages of iteration " + pages.iteration()
                        + " while iteration " + iteration + " is open on data channel " + routing.channelIndex());
            }
            ProtocolException[] bad = new ProtocolException[1];
            pages.forEachIndex(index -> {
                if (bad[0] == null && !routing.accepts(index)) {
                    bad[0] = new ProtocolException(ErrorCode.OUT_OF_ORDER, "page " + index + " does not belong on data channel "
                            + routing.channelIndex() + " of " + routing.channels() + " (memory of " + routing.pages() + " pages)");
                }
            });
            if (bad[0] != null) {
                throw bad[0];
            }
            iterationPages += pages.count();
            totalPages += pages.count();
        } else if (frame instanceof Frame.ZeroPages zero) {
            if (routing == null) {
                throw unexpected(frame, "no page routing: the session has not described its VM");
            }
            if (zero.iteration() != iteration) {
                throw new ProtocolException(ErrorCode.OUT_OF_ORDER, "zero pages of iteration " + zero.iteration()
                        + " while iteration " + iteration + " is open on data channel " + routing.channelIndex());
            }
            if (zero.first() + zero.count() > routing.pages()) {
                throw new ProtocolException(ErrorCode.MALFORMED, "zero pages [" + zero.first() + ", +" + zero.count()
                        + ") outside memory of " + routing.pages() + " pages");
            }
            if (zero.first() < zeroEnd) {
                throw new ProtocolException(ErrorCode.MALFORMED, "zero pages [" + zero.first() + ", +" + zero.count()
                        + ") overlap or precede the iteration's previous ones, which end at " + zeroEnd);
            }
            zeroEnd = zero.first() + zero.count();
            long carried = PageRouting.pagesOf(zero.first(), zero.count(), routing.channelIndex(), routing.channels());
            if (carried != zero.pages()) {
                throw new ProtocolException(ErrorCode.MALFORMED, "zero pages [" + zero.first() + ", +" + zero.count()
                        + ") hold " + carried + " pages of data channel " + routing.channelIndex() + ", not " + zero.pages());
            }
            iterationPages += carried;
            totalPages += carried;
        } else if (frame instanceof Frame.DataEnd end) {
            if (end.iteration() != iteration || end.pages() != iterationPages) {
                throw new ProtocolException(ErrorCode.OUT_OF_ORDER, "DATA_END(" + end.iteration() + ", " + end.pages()
                        + ") but iteration " + iteration + " delivered " + iterationPages + " pages");
            }
            iteration++;
            iterationPages = 0;
            zeroEnd = 0;
        } else if (frame instanceof Frame.ChannelEnd end) {
            if (iterationPages != 0 || end.pages() != totalPages) {
                throw new ProtocolException(ErrorCode.OUT_OF_ORDER, "CHANNEL_END(" + end.pages() + ") after "
                        + totalPages + " pages, " + iterationPages + " of them in an iteration not ended");
            }
            channelEnded = true;
        } else {
            throw unexpected(frame, "not a frame of a data channel");
        }
    }

    private static ProtocolException unexpected(Frame frame, String why) {
        return new ProtocolException(ErrorCode.OUT_OF_ORDER, frame.type() + " not allowed here: " + why);
    }
}
