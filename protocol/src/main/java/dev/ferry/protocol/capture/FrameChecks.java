package dev.ferry.protocol.capture;

import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameDecoder;
import dev.ferry.protocol.FrameHeader;
import dev.ferry.protocol.PageRouting;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.net.ObservedRules;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Checks a capture's frames as their receivers checked them on the wire, channel by channel and
 * direction by direction: each frame whole, with the protocol's own decoder (type, length, flags, CRC32C,
 * the payload's structure; a PAGES frame's CRC covers its meta, its pages have CRCs of their own);
 * sequence numbers consecutive from the first one captured (a GAP record
 * explains a jump); and the session rules of both ends ({@link ObservedRules}), the data channels'
 * page routing included once the VM description has been seen.
 *
 * <p>A check that fails names the protocol's error code ({@code checksum}, {@code out_of_sequence},
 * {@code out_of_order}, ...) and the frame. After it, that direction's frames are decoded but not
 * checked: a receiver would have ended the channel there. A PAGES frame captured without its page data
 * is checked in everything but its pages' own CRCs, which cover the data. After a gap the session rules of that
 * channel are not checked any more: they depend on every frame.
 */
public final class FrameChecks {
    /** A check that failed: its name (an error code's label), the frame, its number in its direction, and why. */
    public record Failure(String check, CaptureRecord.FrameRecord frame, long number, String message) {
    }

    /**
     * A frame checked: its number among the frames of its channel and direction (from 0), the frame as
     * decoded or {@code null} when it could not be (the caller releases it), and what failed.
     */
    public record Checked(CaptureRecord.FrameRecord record, long number, Frame frame, List<Failure> failures) {
    }

    private final CaptureFormat.Side side;
    private final Map<CaptureFormat.Channel, ChannelState> channels = new TreeMap<>();
    /** Pages of the VM's memory and data channels, from the VM description; -1 before it. */
    private long memoryPages = -1;
    private int dataChannels;

    public FrameChecks(CaptureFormat.Side side) {
        this.side = side;
    }

    /** Frames of a channel and direction that the capture lost: the sequence may jump over them. */
    public void gap(CaptureRecord.Gap gap) {
        ChannelState state = state(gap.channel());
        Direction stream = state.direction(gap.direction());
        stream.gapFrom = gap.sequence();
        stream.gapTo = (gap.sequence() + gap.frames()) & 0xffffffffL;
        stream.frames += gap.frames();
        state.rulesLost = true;
    }

    /** Checks the next frame of the capture. */
    public Checked check(CaptureRecord.FrameRecord record) {
        ChannelState state = state(record.channel());
        Direction stream = state.direction(record.direction());
        long number = stream.frames++;
        List<Failure> failures = new ArrayList<>(0);
        boolean checking = !stream.failed;
        long sequence = record.sequence();
        if (sequence >= 0) {
            boolean explained = stream.gapTo >= 0 && stream.gapFrom == stream.expected && stream.gapTo == sequence;
            if (checking && stream.expected >= 0 && sequence != stream.expected && !explained) {
                failures.add(new Failure(ErrorCode.OUT_OF_SEQUENCE.label(), record, number, "sequence " + sequence + ", expected "
                        + stream.expected));
            }
            stream.expected = (sequence + 1) & 0xffffffffL;
            stream.gapFrom = -1;
            stream.gapTo = -1;
        }
        Frame frame = null;
        try {
            frame = decode(record);
        } catch (ProtocolException e) {
            if (checking) {
                failures.add(new Failure(e.code().label(), record, number, e.getMessage()));
            }
        }
        if (frame != null && checking && failures.isEmpty() && !state.rulesLost && state.rulesKnown()) {
            try {
                if (record.direction().fromSource(side)) {
                    state.rules.fromSource(frame);
                } else {
                    state.rules.fromDestination(frame);
                }
            } catch (ProtocolException e) {
                failures.add(new Failure(e.code().label(), record, number, e.getMessage()));
            }
        }
        if (frame instanceof Frame.VmDescription description && description.pageSize() > 0) {
            memoryPages = description.memoryBytes() / description.pageSize();
            dataChannels = description.dataChannels();
            channels.forEach((channel, s) -> s.route());
        }
        if (!failures.isEmpty()) {
            stream.failed = true;
        }
        return new Checked(record, number, frame, failures);
    }

    /**
     * Decodes a frame with the protocol's decoder. A PAGES frame captured without its page data has all
     * its frame's CRC covers (its header and meta): it is decoded, every check made, with zero bytes in
     * place of the data, whose pages' own CRCs then cannot be checked.
     */
    static Frame decode(CaptureRecord.FrameRecord record) throws ProtocolException {
        byte[] bytes = record.bytes();
        ByteBuf frame;
        if (record.pageDataLeftOut() && !record.cut() && bytes.length >= FrameHeader.BYTES) {
            int length = (int) Math.min(record.wireBytes() - FrameHeader.BYTES, dev.ferry.protocol.FrameType.MAX_PAYLOAD);
            frame = Unpooled.buffer(FrameHeader.BYTES + length);
            frame.writeBytes(bytes).writeZero(FrameHeader.BYTES + length - bytes.length);
        } else {
            frame = Unpooled.wrappedBuffer(bytes);
        }
        try {
            return FrameDecoder.read(frame);
        } finally {
            frame.release();
        }
    }

    private ChannelState state(CaptureFormat.Channel channel) {
        return channels.computeIfAbsent(channel, ChannelState::new);
    }

    private final class ChannelState {
        private final CaptureFormat.Channel channel;
        private final ObservedRules rules;
        private final Map<CaptureFormat.Direction, Direction> directions = new EnumMap<>(CaptureFormat.Direction.class);
        private boolean routed;
        private boolean rulesLost;

        ChannelState(CaptureFormat.Channel channel) {
            this.channel = channel;
            this.rules = new ObservedRules(channel.role());
            route();
        }

        Direction direction(CaptureFormat.Direction direction) {
            return directions.computeIfAbsent(direction, d -> new Direction());
        }

        /** A data channel's page routing, once the VM description said what it is. */
        void route() {
            if (channel.role() == ChannelRole.DATA && !routed && memoryPages >= 0) {
                // Rules that missed frames of this channel cannot judge the ones that follow.
                rulesLost |= !directions.isEmpty();
                rules.setRouting(new PageRouting(memoryPages, dataChannels, channel.index()));
                routed = true;
            }
        }

        /** Whether the rules can be checked: a data channel's need the VM description's routing. */
        boolean rulesKnown() {
            return channel.role() == ChannelRole.CONTROL || routed;
        }
    }

    /** One direction of a channel. */
    private static final class Direction {
        private long frames;
        private long expected = -1;
        private long gapFrom = -1;
        private long gapTo = -1;
        private boolean failed;
    }
}
