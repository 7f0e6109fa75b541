package dev.ferry.protocol.capture;

import dev.ferry.protocol.SessionId;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * What a capture file says about itself ({@link CaptureFormat}): its format version, whether page data
 * was captured, the protocol version of the session, which side wrote it, the session, when it began
 * (wall clock) and the daemon's metadata, a JSON object this module treats as opaque.
 */
public record CaptureHeader(int version, boolean pageData, int protocolVersion, CaptureFormat.Side side, SessionId session,
                            long startedAtMillis, String metadata) {

    public CaptureHeader {
        if (metadata.getBytes(StandardCharsets.UTF_8).length > CaptureFormat.MAX_METADATA_BYTES) {
            throw new IllegalArgumentException("capture metadata over " + CaptureFormat.MAX_METADATA_BYTES + " bytes");
        }
    }

    /** The header as written, metadata included. */
    public ByteBuffer encode() {
        byte[] meta = metadata.getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate(CaptureFormat.HEADER_BYTES + meta.length);
        out.putLong(CaptureFormat.MAGIC).putShort((short) version).putShort((short) (pageData ? CaptureFormat.FLAG_PAGE_DATA : 0))
                .putShort((short) protocolVersion).put((byte) side.code()).put((byte) 0)
                .putLong(session.high()).putLong(session.low()).putLong(startedAtMillis).putInt(meta.length).put(meta);
        return out.flip();
    }

    /**
     * Reads the fixed part of a header, {@link CaptureFormat#HEADER_BYTES} bytes; returns the metadata's
     * length through {@code metadataLength}, which the caller reads and passes to {@link #withMetadata}.
     */
    static CaptureHeader decode(ByteBuffer in, int[] metadataLength) throws CaptureFormatException {
        long magic = in.getLong();
        if (magic != CaptureFormat.MAGIC) {
            throw new CaptureFormatException(0, String.format("not a Ferry capture: magic 0x%016x", magic));
        }
        int version = Short.toUnsignedInt(in.getShort());
        if (version != CaptureFormat.VERSION) {
            throw new CaptureFormatException(8, "capture format version " + version + "; this build reads version " + CaptureFormat.VERSION);
        }
        int flags = Short.toUnsignedInt(in.getShort());
        int protocolVersion = Short.toUnsignedInt(in.getShort());
        CaptureFormat.Side side = CaptureFormat.Side.of(Byte.toUnsignedInt(in.get()));
        if (side == null) {
            throw new CaptureFormatException(14, "unknown side " + Byte.toUnsignedInt(in.get(14)));
        }
        in.get();
        SessionId session = new SessionId(in.getLong(), in.getLong());
        long startedAt = in.getLong();
        int length = in.getInt();
        if (length < 0 || length > CaptureFormat.MAX_METADATA_BYTES) {
            throw new CaptureFormatException(40, "metadata of " + Integer.toUnsignedString(length) + " bytes");
        }
        metadataLength[0] = length;
        return new CaptureHeader(version, (flags & CaptureFormat.FLAG_PAGE_DATA) != 0, protocolVersion, side, session, startedAt, "");
    }

    CaptureHeader withMetadata(String json) {
        return new CaptureHeader(version, pageData, protocolVersion, side, session, startedAtMillis, json);
    }
}
