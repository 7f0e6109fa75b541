package dev.ferry.protocol.capture;

/** A record of a capture file ({@link CaptureFormat}), as {@link CaptureReader} reads it. */
public sealed interface CaptureRecord permits CaptureRecord.FrameRecord, CaptureRecord.Gap, CaptureRecord.End {

    /** Where the record begins in the file. */
    long offset();

    /** Nanoseconds since the capture began. */
    long nanos();

    /**
     * A frame as it went over the wire: {@code bytes} holds its header and its payload, or the part of
     * the payload that was captured ({@link #pageDataLeftOut}, {@link #cut}).
     */
    record FrameRecord(long offset, long nanos, CaptureFormat.Channel channel, CaptureFormat.Direction direction, int flags,
                       byte[] bytes) implements CaptureRecord {

        /** A PAGES frame captured without its page data. */
        public boolean pageDataLeftOut() {
            return (flags & CaptureFormat.PAGE_DATA_LEFT_OUT) != 0;
        }

        /** Only the beginning of the frame came: the connection closed inside it, or it was not a frame. */
        public boolean cut() {
            return (flags & CaptureFormat.CUT) != 0;
        }

        /** The frame's sequence number, or -1 when not even its header was captured. */
        public long sequence() {
            return bytes.length < 12 ? -1 : Integer.toUnsignedLong(intAt(8));
        }

        /** The frame's bytes on the wire, as its header says. */
        public long wireBytes() {
            return bytes.length < 4 ? bytes.length : 16 + Integer.toUnsignedLong(intAt(0));
        }

        /** The frame type's code, or -1. */
        public int typeCode() {
            return bytes.length < 5 ? -1 : bytes[4] & 0xff;
        }

        /** Where the frame itself begins in the file. */
        public long frameOffset() {
            return offset + CaptureFormat.RECORD_HEADER_BYTES + 1;
        }

        private int intAt(int at) {
            return (bytes[at] & 0xff) << 24 | (bytes[at + 1] & 0xff) << 16 | (bytes[at + 2] & 0xff) << 8 | (bytes[at + 3] & 0xff);
        }
    }

    /** {@code frames} frames of a channel and direction, from {@code sequence} on, were not captured. */
    record Gap(long offset, long nanos, CaptureFormat.Channel channel, CaptureFormat.Direction direction, long sequence, long frames,
               long wireBytes) implements CaptureRecord {
    }

    /** The capture closed: its counts, and how the session ended. */
    record End(long offset, long nanos, long frames, long wireBytes, long droppedFrames, long droppedBytes, String outcome)
            implements CaptureRecord {
    }
}
