package dev.ferry.device.migration;

import dev.ferry.device.memory.PageStore;
import dev.ferry.device.memory.PageGeometry;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.zip.CRC32C;

/**
 * One resume session's side of the data window: takes a {@link StreamFormat} stream in any
 * chunking (W5) and processes it as it arrives (W7): each record is checked and applied as soon as it is
 * complete, pages into device memory and the STATE record into the registers (the device's internal
 * state is undefined while RESUMING). {@link #loadedBytes()} counts what was processed. What is left for
 * {@link #finish()}, when RESUMING is cleared, is the check that the stream was complete (D8).
 *
 * <p>The first problem found is kept and everything after it is ignored, so a peer cannot make the
 * device hold more than one record: memory use is bounded by the largest record.
 */
public final class LoadStream {
    private final DeviceImage image;
    private final PageStore memory;
    private final ByteBuffer recordHeader = ByteBuffer.allocate(StreamFormat.RECORD_HEADER_BYTES);
    private final CRC32C crc = new CRC32C();

    private ByteBuffer payload;
    private byte type;
    private long consumed;
    private long beforeEnd;
    private long loaded;
    private boolean seenHeader;
    private boolean seenState;
    private boolean seenEnd;
    private String error;

    public LoadStream(DeviceImage image) {
        this.image = image;
        this.memory = image.memory();
    }

    /** Bytes accepted so far, processed or not. */
    public long bytesWritten() {
        return consumed;
    }

    /** W7: bytes processed so far, up to the end of the last complete record checked and applied. */
    public long loadedBytes() {
        return loaded;
    }

    /**
     * Takes the next chunk of the stream and processes every record it completes (W7); all of {@code src}
     * is consumed.
     *
     * @return {@code null}, or the first problem the stream has (then nothing after it was applied)
     */
    public String write(ByteBuffer src) {
        while (src.hasRemaining()) {
            if (error != null) {
                consumed += src.remaining();
                src.position(src.limit());
                return error;
            }
            if (seenEnd) {
                fail("data after the end record at byte " + consumed);
                continue;
            }
            if (payload == null) {
                int n = Math.min(src.remaining(), recordHeader.remaining());
                copy(src, recordHeader, n);
                if (!recordHeader.hasRemaining()) {
                    int length = startRecord();
                    if (length >= 0 && src.remaining() >= length) {
                        // The whole record is here: read it in place instead of gathering it.
                        ByteBuffer body = src.slice(src.position(), length);
                        src.position(src.position() + length);
                        consumed += length;
                        finishRecord(body);
                    } else if (length >= 0) {
                        payload = ByteBuffer.allocate(length);
                    }
                }
            } else {
                int n = Math.min(src.remaining(), payload.remaining());
                copy(src, payload, n);
                if (!payload.hasRemaining()) {
                    ByteBuffer body = payload.flip();
                    payload = null;
                    finishRecord(body);
                }
            }
        }
        return error;
    }

    /**
     * D8: what is left when RESUMING is cleared. Every complete record was processed as it arrived (W7), so
     * only completeness remains to check: the end record arrived, and nothing failed.
     *
     * @return {@code null} on success, else why the load failed
     */
    public String finish() {
        if (error != null) {
            return error;
        }
        if (!seenEnd) {
            return "incomplete stream: " + consumed + " bytes without an end record";
        }
        return null;
    }

    private void copy(ByteBuffer src, ByteBuffer dst, int n) {
        int limit = src.limit();
        src.limit(src.position() + n);
        dst.put(src);
        src.limit(limit);
        consumed += n;
    }

    /** Checks a complete record header: the payload's length, or -1 when the stream failed. */
    private int startRecord() {
        recordHeader.flip();
        type = recordHeader.get();
        int length = recordHeader.getInt();
        int max = StreamFormat.maxPayload(type);
        if (max < 0) {
            fail("unknown record type " + (type & 0xff) + " at byte " + (consumed - StreamFormat.RECORD_HEADER_BYTES));
            return -1;
        }
        boolean exact = type == StreamFormat.PAGE || type == StreamFormat.ZERO || type == StreamFormat.END;
        if (length < 0 || length > max || (exact && length != max)) {
            fail(StreamFormat.typeName(type) + " record has a bad length " + Integer.toUnsignedString(length));
            return -1;
        }
        if (type == StreamFormat.END) {
            beforeEnd = consumed - StreamFormat.RECORD_HEADER_BYTES;
        } else {
            crc.update(recordHeader.array(), 0, StreamFormat.RECORD_HEADER_BYTES);
        }
        recordHeader.clear();
        return length;
    }

    /** A record's whole payload, from its position to its limit. */
    private void finishRecord(ByteBuffer body) {
        if (type != StreamFormat.END) {
            crc.update(body.duplicate());
        }
        try {
            switch (type) {
                case StreamFormat.HEADER -> header(body);
                case StreamFormat.PAGE -> page(body, false);
                case StreamFormat.ZERO -> page(body, true);
                case StreamFormat.STATE -> state(body);
                case StreamFormat.END -> end(body);
                default -> throw new StreamFormatException("unknown record type " + (type & 0xff));
            }
            loaded = consumed;
        } catch (StreamFormatException e) {
            fail(e.getMessage());
        }
    }

    private void header(ByteBuffer body) throws StreamFormatException {
        if (seenHeader) {
            throw new StreamFormatException("a second HEADER record");
        }
        seenHeader = true;
        StreamFormat.Header header = StreamFormat.Header.read(body);
        if (!header.kind().equals(image.kind())) {
            throw new StreamFormatException("stream of a " + header.kind() + " device, this device is a " + image.kind());
        }
        if (header.version() != image.formatVersion()) {
            throw new StreamFormatException("format version " + header.version() + ", this device reads version "
                    + image.formatVersion());
        }
        if (!Arrays.equals(header.config(), image.configBytes())) {
            throw new StreamFormatException("incompatible configuration: stream has '" + header.configText() + "', device has '"
                    + new String(image.configBytes(), StandardCharsets.UTF_8) + "'");
        }
        if (header.memoryBytes() != memory.sizeBytes() || header.pageSize() != PageGeometry.PAGE_SIZE) {
            throw new StreamFormatException("device memory " + header.memoryBytes() + " bytes in " + header.pageSize()
                    + "-byte pages, this device has " + memory.sizeBytes() + " in " + PageGeometry.PAGE_SIZE);
        }
    }

    private void page(ByteBuffer body, boolean zero) throws StreamFormatException {
        if (!seenHeader) {
            throw new StreamFormatException("page before the HEADER record");
        }
        if (seenState) {
            throw new StreamFormatException("page after the STATE record");
        }
        long index = Integer.toUnsignedLong(body.getInt());
        if (index >= memory.pages()) {
            throw new StreamFormatException("page " + index + " outside device memory of " + memory.pages() + " pages");
        }
        if (zero) {
            memory.zeroPage(index);
        } else {
            memory.writePage(index, body);
        }
    }

    private void state(ByteBuffer body) throws StreamFormatException {
        if (!seenHeader) {
            throw new StreamFormatException("STATE before the HEADER record");
        }
        if (seenState) {
            throw new StreamFormatException("a second STATE record");
        }
        seenState = true;
        byte[] state = new byte[body.remaining()];
        body.get(state);
        // W7: applied now; the checksum in the end record still decides whether the load succeeds (D8).
        try {
            image.loadState(state);
        } catch (StreamFormatException e) {
            throw new StreamFormatException("invalid device state: " + e.getMessage());
        } catch (RuntimeException e) {
            throw new StreamFormatException("invalid device state: " + e);
        }
    }

    private void end(ByteBuffer body) throws StreamFormatException {
        if (!seenState) {
            throw new StreamFormatException("end record before the STATE record");
        }
        StreamFormat.checkEnd(body, beforeEnd, crc);
        seenEnd = true;
    }

    private void fail(String message) {
        if (error == null) {
            error = message;
        }
    }
}
