package dev.ferry.protocol.capture;

import dev.ferry.protocol.ChannelRole;

/**
 * The capture file format, version 1: a header, then records, all integers big-endian. The protocol's
 * README ("Captured streams") is its specification.
 *
 * <pre>
 * header  magic:u64 "FERRYCAP"  version:u16  flags:u16 (bit 0: page data captured)  protocolVersion:u16
 *         side:u8 (1 source, 2 destination)  reserved:u8  session:16  startedAtMillis:u64
 *         metadataLength:u32  metadata (UTF-8 JSON object, the daemon's: migration, VM, version)
 * record  kind:u8  role:u8  channel:u8  direction:u8 (1 sent, 2 received)  nanos:u64  length:u32  body[length]
 *   FRAME 1  flags:u8 (bit 0: page data left out, bit 1: cut short), then the frame as on the wire: its
 *            16-byte header and its payload (a PAGES frame up to the end of its entries without page data)
 *   GAP   2  sequence:u32 frames:u32 wireBytes:u64: frames of this channel and direction not captured
 *            (the writer was behind), from that sequence on
 *   END   3  frames:u64 wireBytes:u64 droppedFrames:u64 droppedBytes:u64 outcomeLength:u16 outcome
 *            (role, channel and direction 0): the capture closed; nothing follows
 * </pre>
 *
 * {@code nanos} is the time since the capture began on the daemon's monotonic clock: for a frame sent,
 * when it was handed to the socket; for a frame received, when its last byte arrived.
 */
public final class CaptureFormat {
    /** "FERRYCAP". */
    public static final long MAGIC = 0x46455252_59434150L;
    public static final int VERSION = 1;
    /** Header flag: PAGES frames are captured whole, page data included. */
    public static final int FLAG_PAGE_DATA = 1;
    /** The header's bytes before its metadata. */
    public static final int HEADER_BYTES = 44;
    public static final int MAX_METADATA_BYTES = 64 * 1024;
    public static final int RECORD_HEADER_BYTES = 16;
    /** The largest body a record may have: a frame record of the largest frame. */
    public static final int MAX_RECORD_BODY = 1 + 16 + dev.ferry.protocol.FrameType.MAX_PAYLOAD;

    /** Record kinds. */
    public static final int FRAME = 1;
    public static final int GAP = 2;
    public static final int END = 3;

    /** A frame record's flag: the PAGES frame's page data was left out (the capture was without page data). */
    public static final int PAGE_DATA_LEFT_OUT = 1;
    /** A frame record's flag: the frame is cut short, the connection closed inside it or it was not a frame. */
    public static final int CUT = 2;

    public static final int GAP_BODY_BYTES = 16;
    public static final int END_BODY_BYTES = 34;

    private CaptureFormat() {
    }

    /** Which end of the session wrote a capture. */
    public enum Side {
        SOURCE(1), DESTINATION(2);

        private final int code;

        Side(int code) {
            this.code = code;
        }

        public int code() {
            return code;
        }

        public String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }

        /** The side with this code, or {@code null}. */
        public static Side of(int code) {
            for (Side side : values()) {
                if (side.code == code) {
                    return side;
                }
            }
            return null;
        }
    }

    /** A frame's direction, seen from the side that captured it. */
    public enum Direction {
        SENT(1), RECEIVED(2);

        private final int code;

        Direction(int code) {
            this.code = code;
        }

        public int code() {
            return code;
        }

        public String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }

        /** The direction with this code, or {@code null}. */
        public static Direction of(int code) {
            for (Direction direction : values()) {
                if (direction.code == code) {
                    return direction;
                }
            }
            return null;
        }

        /** Whether a frame of this direction, captured on {@code side}, was sent by the source. */
        public boolean fromSource(Side side) {
            return (this == SENT) == (side == Side.SOURCE);
        }
    }

    /** A channel of the session: the control channel, or data channel {@code index}. */
    public record Channel(ChannelRole role, int index) implements Comparable<Channel> {
        public static final Channel CONTROL = new Channel(ChannelRole.CONTROL, 0);

        public static Channel data(int index) {
            return new Channel(ChannelRole.DATA, index);
        }

        @Override
        public int compareTo(Channel other) {
            return role != other.role ? role.compareTo(other.role) : Integer.compare(index, other.index);
        }

        @Override
        public String toString() {
            return role == ChannelRole.CONTROL ? "control" : "data#" + index;
        }
    }
}
