package dev.ferry.protocol;

import io.netty.buffer.ByteBuf;
import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * The 16-byte frame header, big-endian:
 *
 * <pre>
 * 0  u32 length     payload bytes that follow the header
 * 4  u8  type       {@link FrameType}
 * 5  u8  flags      0 in version 1
 * 6  u16 reserved   0
 * 8  u32 sequence   frames sent on this channel in this direction before this one
 * 12 u32 crc32c     over header bytes 0..11, then the payload
 * </pre>
 */
public final class FrameHeader {
    public static final int BYTES = 16;
    static final int CRC_OFFSET = 12;

    private FrameHeader() {
    }

    /** CRC32C over {@code header[0..12)} followed by {@code payload}'s readable bytes, without moving either. */
    public static int crc(ByteBuf header, int headerIndex, ByteBuf payload, int payloadIndex, int payloadLength) {
        CRC32C crc = new CRC32C();
        update(crc, header, headerIndex, CRC_OFFSET);
        update(crc, payload, payloadIndex, payloadLength);
        return (int) crc.getValue();
    }

    static void update(CRC32C crc, ByteBuf buf, int index, int length) {
        if (length == 0) {
            return;
        }
        if (buf.nioBufferCount() == 1) {
            crc.update(buf.nioBuffer(index, length));
            return;
        }
        for (ByteBuffer part : buf.nioBuffers(index, length)) {
            crc.update(part);
        }
    }
}
