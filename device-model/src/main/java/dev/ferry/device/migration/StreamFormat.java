package dev.ferry.device.migration;

import dev.ferry.device.memory.PageGeometry;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32C;

/**
 * The device migration data format (W5). A stream is a sequence of records, all integers
 * big-endian:
 *
 * <pre>
 * record    := type:u8 length:u32 payload[length]
 * HEADER  1 := magic:u32 "FYDS" version:u16 kindLength:u8 kind[kindLength] configLength:u16 config[configLength]
 *              memoryBytes:u64 pageSize:u32
 * PAGE    2 := index:u32 data[pageSize]          a page of device memory
 * ZERO    3 := index:u32                         a page of device memory that is all zeros
 * STATE   4 := registers and queued work, kind-specific
 * END     5 := streamBytes:u64 crc32c:u32        bytes before this record, and their CRC32C
 * </pre>
 *
 * <p>{@code version} is the kind's data format version (its provider's {@code formatVersion()}): the record
 * layout is the same for every kind, the STATE payload is the kind's own.
 *
 * <p>A stream is HEADER, then PAGE/ZERO records in any order (a later copy of a page replaces an
 * earlier one), then exactly one STATE, then END. Nothing may follow END.
 */
public final class StreamFormat {
    public static final int MAGIC = 0x46594453; // "FYDS"
    /** The data format version of every built-in kind; a loaded kind has its own (its provider's {@code formatVersion()}). */
    public static final int VERSION = 1;

    public static final byte HEADER = 1;
    public static final byte PAGE = 2;
    public static final byte ZERO = 3;
    public static final byte STATE = 4;
    public static final byte END = 5;

    /** type + length. */
    public static final int RECORD_HEADER_BYTES = 5;
    public static final int PAGE_RECORD_BYTES = RECORD_HEADER_BYTES + 4 + PageGeometry.PAGE_SIZE;
    public static final int ZERO_RECORD_BYTES = RECORD_HEADER_BYTES + 4;
    public static final int END_PAYLOAD_BYTES = 12;
    public static final int END_RECORD_BYTES = RECORD_HEADER_BYTES + END_PAYLOAD_BYTES;

    public static final int MAX_HEADER_PAYLOAD = 4 + 2 + 1 + 255 + 2 + 1024 + 8 + 4;
    public static final int MAX_STATE_PAYLOAD = 256 * 1024;

    private StreamFormat() {
    }

    /** A HEADER record's fields; {@code config} is the device's configuration as the stream carries it. */
    public record Header(int version, String kind, byte[] config, long memoryBytes, int pageSize) {
        /** The configuration as text. */
        public String configText() {
            return new String(config, StandardCharsets.UTF_8);
        }

        /**
         * Reads a HEADER record's payload, checking its structure. The layout is the same for every kind and
         * version; whether a device can load it (its kind, its data format version, its configuration) is the
         * device's to judge.
         */
        public static Header read(ByteBuffer body) throws StreamFormatException {
            need(body, 4 + 2 + 1);
            int magic = body.getInt();
            if (magic != MAGIC) {
                throw new StreamFormatException(String.format("bad magic 0x%08x", magic));
            }
            int version = Short.toUnsignedInt(body.getShort());
            byte[] kind = new byte[Byte.toUnsignedInt(body.get())];
            need(body, kind.length + 2);
            body.get(kind);
            byte[] config = new byte[Short.toUnsignedInt(body.getShort())];
            need(body, config.length + 8 + 4);
            body.get(config);
            long memoryBytes = body.getLong();
            int pageSize = body.getInt();
            if (body.hasRemaining()) {
                throw new StreamFormatException("HEADER record has " + body.remaining() + " trailing bytes");
            }
            return new Header(version, new String(kind, StandardCharsets.US_ASCII), config, memoryBytes, pageSize);
        }

        private static void need(ByteBuffer body, int bytes) throws StreamFormatException {
            if (body.remaining() < bytes) {
                throw new StreamFormatException("HEADER record too short");
            }
        }
    }

    /**
     * Checks an END record's payload against the stream before it: {@code before} bytes, whose CRC32C
     * (every record but the end) is {@code crc}.
     */
    static void checkEnd(ByteBuffer body, long before, CRC32C crc) throws StreamFormatException {
        long streamBytes = body.getLong();
        int checksum = body.getInt();
        if (streamBytes != before) {
            throw new StreamFormatException("end record counts " + streamBytes + " bytes, " + before + " arrived");
        }
        if (checksum != (int) crc.getValue()) {
            throw new StreamFormatException(String.format("checksum mismatch: stream says %08x, data gives %08x",
                    checksum, (int) crc.getValue()));
        }
    }

    /** The largest payload a record of this type may carry, or -1 for an unknown type. */
    static int maxPayload(byte type) {
        return switch (type) {
            case HEADER -> MAX_HEADER_PAYLOAD;
            case PAGE -> 4 + PageGeometry.PAGE_SIZE;
            case ZERO -> 4;
            case STATE -> MAX_STATE_PAYLOAD;
            case END -> END_PAYLOAD_BYTES;
            default -> -1;
        };
    }

    /** A record type's name: HEADER, PAGE, ZERO, STATE, END. */
    public static String typeName(byte type) {
        return switch (type) {
            case HEADER -> "HEADER";
            case PAGE -> "PAGE";
            case ZERO -> "ZERO";
            case STATE -> "STATE";
            case END -> "END";
            default -> "unknown type " + (type & 0xff);
        };
    }
}
