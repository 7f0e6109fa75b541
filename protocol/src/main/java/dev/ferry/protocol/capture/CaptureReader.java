package dev.ferry.protocol.capture;

import dev.ferry.protocol.ChannelRole;
import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads a capture file record by record, checking its structure as it goes: the magic and version,
 * every record's kind, channel and length, and that nothing follows the END record. It holds one
 * record at a time, so a capture of any size can be read.
 */
public final class CaptureReader implements AutoCloseable {
    private final DataInputStream in;
    private final CaptureHeader header;
    private long offset;
    private boolean ended;

    private CaptureReader(InputStream stream) throws IOException, CaptureFormatException {
        this.in = new DataInputStream(new BufferedInputStream(stream, 1 << 16));
        byte[] fixed = new byte[CaptureFormat.HEADER_BYTES];
        int read = in.readNBytes(fixed, 0, fixed.length);
        if (read < fixed.length) {
            boolean ours = read >= 8 && ByteBuffer.wrap(fixed).getLong() == CaptureFormat.MAGIC;
            throw new CaptureFormatException(0, ours ? "the capture's header is cut short"
                    : "not a Ferry capture: the file is shorter than a capture's header");
        }
        int[] metadataLength = new int[1];
        CaptureHeader fixedPart = CaptureHeader.decode(ByteBuffer.wrap(fixed), metadataLength);
        byte[] metadata = in.readNBytes(metadataLength[0]);
        if (metadata.length < metadataLength[0]) {
            throw new CaptureFormatException(CaptureFormat.HEADER_BYTES, "the capture's metadata is cut short");
        }
        this.header = fixedPart.withMetadata(new String(metadata, StandardCharsets.UTF_8));
        this.offset = CaptureFormat.HEADER_BYTES + metadata.length;
    }

    /** Opens a capture and reads its header. */
    public static CaptureReader open(Path file) throws IOException, CaptureFormatException {
        InputStream stream = Files.newInputStream(file);
        try {
            return new CaptureReader(stream);
        } catch (IOException | CaptureFormatException | RuntimeException e) {
            stream.close();
            throw e;
        }
    }

    public CaptureHeader header() {
        return header;
    }

    /** The next record, or {@code null} at the end of the file. */
    public CaptureRecord next() throws IOException, CaptureFormatException {
        long at = offset;
        int kind = in.read();
        if (kind < 0) {
            return null;
        }
        if (ended) {
            throw new CaptureFormatException(at, "data after the END record");
        }
        byte[] head = new byte[CaptureFormat.RECORD_HEADER_BYTES - 1];
        try {
            in.readFully(head);
        } catch (EOFException e) {
            throw new CaptureFormatException(at, "a record cut short: the file ends inside its header");
        }
        ByteBuffer h = ByteBuffer.wrap(head);
        int role = Byte.toUnsignedInt(h.get());
        int index = Byte.toUnsignedInt(h.get());
        int direction = Byte.toUnsignedInt(h.get());
        long nanos = h.getLong();
        long length = Integer.toUnsignedLong(h.getInt());
        int max = switch (kind) {
            case CaptureFormat.FRAME -> CaptureFormat.MAX_RECORD_BODY;
            case CaptureFormat.GAP -> CaptureFormat.GAP_BODY_BYTES;
            case CaptureFormat.END -> CaptureFormat.END_BODY_BYTES + 1024;
            default -> throw new CaptureFormatException(at, "unknown record kind " + kind);
        };
        if (length > max || (kind == CaptureFormat.GAP && length != max) || (kind == CaptureFormat.END
                && length < CaptureFormat.END_BODY_BYTES) || (kind == CaptureFormat.FRAME && length < 1)) {
            throw new CaptureFormatException(at, "a record of kind " + kind + " with a body of " + length + " bytes");
        }
        byte[] body = new byte[(int) length];
        try {
            in.readFully(body);
        } catch (EOFException e) {
            throw new CaptureFormatException(at, "a record cut short: the file ends inside it");
        }
        offset = at + CaptureFormat.RECORD_HEADER_BYTES + length;
        ByteBuffer b = ByteBuffer.wrap(body);
        if (kind == CaptureFormat.END) {
            ended = true;
            long frames = b.getLong();
            long wire = b.getLong();
            long dropped = b.getLong();
            long droppedBytes = b.getLong();
            int outcomeLength = Short.toUnsignedInt(b.getShort());
            if (outcomeLength != b.remaining()) {
                throw new CaptureFormatException(at, "an END record whose outcome does not fit it");
            }
            return new CaptureRecord.End(at, nanos, frames, wire, dropped, droppedBytes,
                    new String(body, b.position(), outcomeLength, StandardCharsets.UTF_8));
        }
        CaptureFormat.Channel channel = channel(at, role, index);
        CaptureFormat.Direction dir = CaptureFormat.Direction.of(direction);
        if (dir == null) {
            throw new CaptureFormatException(at, "unknown direction " + direction);
        }
        if (kind == CaptureFormat.GAP) {
            return new CaptureRecord.Gap(at, nanos, channel, dir, Integer.toUnsignedLong(b.getInt()), Integer.toUnsignedLong(b.getInt()),
                    b.getLong());
        }
        int flags = Byte.toUnsignedInt(b.get());
        byte[] frame = new byte[body.length - 1];
        b.get(frame);
        return new CaptureRecord.FrameRecord(at, nanos, channel, dir, flags, frame);
    }

    private static CaptureFormat.Channel channel(long at, int role, int index) throws CaptureFormatException {
        ChannelRole channelRole = ChannelRole.of(role);
        if (channelRole == null || (channelRole == ChannelRole.CONTROL && index != 0)) {
            throw new CaptureFormatException(at, "unknown channel: role " + role + ", index " + index);
        }
        return new CaptureFormat.Channel(channelRole, index);
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
