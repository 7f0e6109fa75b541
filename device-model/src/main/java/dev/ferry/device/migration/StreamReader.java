package dev.ferry.device.migration;

import java.nio.ByteBuffer;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32C;

/**
 * Reads a device's migration data ({@link StreamFormat}) without a device, for tools that show a stream
 * (a captured migration's inspector): each record's type, offset and length as it completes, the
 * header's fields, and the checks a loading device makes on the stream's own structure (record types
 * and lengths, the order HEADER, pages, STATE, END, the end record's byte count and CRC32C). What only
 * a device can judge (its kind, configuration and memory against the header's, the state image) is left
 * to the device.
 *
 * <p>Takes the stream in order, in any chunking; holds one record at a time. The first problem is kept
 * and nothing after it is read.
 */
public final class StreamReader {
    /** Hears of each record once it is complete: where it begins, its type, and its payload (valid during the call). */
    @FunctionalInterface
    public interface Listener {
        void record(long offset, byte type, ByteBuffer payload);
    }

    private final Listener listener;
    private final ByteBuffer recordHeader = ByteBuffer.allocate(StreamFormat.RECORD_HEADER_BYTES);
    private final CRC32C crc = new CRC32C();
    private final Map<String, Long> counts = new TreeMap<>();
    private final Map<String, Long> firstOffsets = new TreeMap<>();
    private ByteBuffer payload;
    private byte type;
    private long recordStart;
    private long consumed;
    private StreamFormat.Header header;
    private long stateOffset = -1;
    private int stateBytes;
    private long endOffset = -1;
    private String error;

    public StreamReader() {
        this((offset, type, payload) -> {
        });
    }

    public StreamReader(Listener listener) {
        this.listener = listener;
    }

    /** Reads the next bytes of the stream; all of {@code src} is consumed. Returns the first problem, or null. */
    public String write(ByteBuffer src) {
        while (src.hasRemaining() && error == null) {
            if (endOffset >= 0) {
                fail("data after the end record at byte " + consumed);
                break;
            }
            if (payload == null) {
                int n = Math.min(src.remaining(), recordHeader.remaining());
                copy(src, recordHeader, n);
                if (!recordHeader.hasRemaining()) {
                    startRecord();
                }
            } else {
                copy(src, payload, Math.min(src.remaining(), payload.remaining()));
            }
            if (payload != null && !payload.hasRemaining()) {
                ByteBuffer body = payload.flip();
                payload = null;
                finishRecord(body);
            }
        }
        consumed += src.remaining();
        src.position(src.limit());
        return error;
    }

    /** The stream ends here: whether it was whole (its end record read), or its first problem. */
    public String finish() {
        if (error == null && endOffset < 0) {
            return "incomplete stream: " + consumed + " bytes without an end record";
        }
        return error;
    }

    /** Bytes read so far. */
    public long bytes() {
        return consumed;
    }

    /** The header, once read; else null. */
    public StreamFormat.Header header() {
        return header;
    }

    /** Records read, by type name. */
    public Map<String, Long> counts() {
        return Map.copyOf(counts);
    }

    /** Where the first record of each type began. */
    public Map<String, Long> firstOffsets() {
        return Map.copyOf(firstOffsets);
    }

    /** Where the STATE record began, or -1. */
    public long stateOffset() {
        return stateOffset;
    }

    /** The STATE record's payload bytes. */
    public int stateBytes() {
        return stateBytes;
    }

    /** Where the end record began, or -1 before it. */
    public long endOffset() {
        return endOffset;
    }

    /** The first problem, or null. */
    public String error() {
        return error;
    }

    private void copy(ByteBuffer src, ByteBuffer dst, int n) {
        dst.put(src.slice(src.position(), n));
        src.position(src.position() + n);
        consumed += n;
    }

    private void startRecord() {
        recordHeader.flip();
        type = recordHeader.get();
        int length = recordHeader.getInt();
        recordStart = consumed - StreamFormat.RECORD_HEADER_BYTES;
        int max = StreamFormat.maxPayload(type);
        if (max < 0) {
            fail("unknown record type " + (type & 0xff) + " at byte " + recordStart);
            return;
        }
        boolean exact = type == StreamFormat.PAGE || type == StreamFormat.ZERO || type == StreamFormat.END;
        if (length < 0 || length > max || (exact && length != max)) {
            fail(StreamFormat.typeName(type) + " record at byte " + recordStart + " has a bad length " + Integer.toUnsignedString(length));
            return;
        }
        if (type != StreamFormat.END) {
            crc.update(recordHeader.array(), 0, StreamFormat.RECORD_HEADER_BYTES);
        }
        recordHeader.clear();
        payload = ByteBuffer.allocate(length);
    }

    private void finishRecord(ByteBuffer body) {
        if (type != StreamFormat.END) {
            crc.update(body.duplicate());
        }
        String name = StreamFormat.typeName(type);
        try {
            switch (type) {
                case StreamFormat.HEADER -> header(body.duplicate());
                case StreamFormat.PAGE, StreamFormat.ZERO -> order(header != null && stateOffset < 0, "page");
                case StreamFormat.STATE -> {
                    order(header != null && stateOffset < 0, "STATE record");
                    stateOffset = recordStart;
                    stateBytes = body.remaining();
                }
                case StreamFormat.END -> end(body.duplicate());
                default -> throw new StreamFormatException("unknown record type " + (type & 0xff));
            }
        } catch (StreamFormatException e) {
            fail(e.getMessage());
            return;
        }
        counts.merge(name, 1L, Long::sum);
        firstOffsets.putIfAbsent(name, recordStart);
        listener.record(recordStart, type, body);
    }

    private void order(boolean inPlace, String what) throws StreamFormatException {
        if (!inPlace) {
            throw new StreamFormatException(what + " at byte " + recordStart + (header == null ? " before the HEADER record"
                    : " after the STATE record"));
        }
    }

    private void header(ByteBuffer body) throws StreamFormatException {
        if (header != null) {
            throw new StreamFormatException("a second HEADER record at byte " + recordStart);
        }
        header = StreamFormat.Header.read(body);
    }

    private void end(ByteBuffer body) throws StreamFormatException {
        if (stateOffset < 0) {
            throw new StreamFormatException("end record at byte " + recordStart + " before the STATE record");
        }
        StreamFormat.checkEnd(body, recordStart, crc);
        endOffset = recordStart;
    }

    private void fail(String message) {
        if (error == null) {
            error = message;
        }
    }
}
