package dev.ferry.device.migration;

import dev.ferry.device.memory.PageGeometry;

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

    static String typeName(byte type) {
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
