package dev.ferry.device.migration;

import dev.ferry.device.memory.DirtyBitmap;
import dev.ferry.device.memory.PageStore;
import dev.ferry.device.memory.PageGeometry;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32C;

/**
 * One save session's side of the data window (W1–W4): produces the device's migration data in
 * {@link StreamFormat}, lazily, as it is read.
 *
 * <p>A device with internal dirty logging streams its header and bulk memory in pre-copy, then in
 * stop-and-copy only the pages written since they were read, its registers and the end record (W4).
 * A device without it streams nothing in pre-copy and everything in stop-and-copy (W3). The user may
 * switch to stop-and-copy in the middle of a record: the rest of it is read first (W2).
 *
 * <p>A re-initialisation ({@link #reinit()}, W8) makes every page initial data again: a new round of
 * initial data starts after the record being read, streams like the first, and {@link #initialData()}
 * says where it ends and whether it has been read.
 *
 * <p>Not thread-safe: the owning device serialises every call under its lock. The device's engine
 * may write device memory concurrently during pre-copy; it marks the internal log after each write,
 * and this stream clears a page's bit before copying the page, so a racing write is sent again.
 *
 * <p>A page goes from device memory straight into the reader's buffer, as a driver's {@code read()} copies
 * device state into the caller's: one copy, not a copy into a staging record and another out of it. The
 * stream's checksum (the end record's, D8) is therefore taken over the bytes as they land in the reader's
 * buffer, so that a page the device's own work changes while it is read is summed as it was streamed, not as
 * it was before; the write marked the log, so the page is sent again (W4).
 */
public final class SaveStream {
    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);
    private static final ByteBuffer ZERO_PAGE = ByteBuffer.allocate(PageGeometry.PAGE_SIZE).asReadOnlyBuffer();

    private final DeviceImage image;
    private final boolean preCopyCapable;
    private final PageStore memory;
    private final DirtyBitmap log;
    private final long pages;
    /** A page record up to its payload's page: the page itself is read from device memory as it is copied out. */
    private final ByteBuffer pageHeader = ByteBuffer.allocate(StreamFormat.PAGE_RECORD_BYTES - PageGeometry.PAGE_SIZE);
    private final CRC32C crc = new CRC32C();

    private boolean stopCopy;
    private boolean headerSent;
    private long cursor;
    private long dirtyScan;
    private byte[] state;
    private boolean stateSent;
    private boolean endSent;
    private ByteBuffer current = EMPTY;
    /** Whether {@link #current}'s bytes count in the checksum (all but the end record's). */
    private boolean summed;
    /** The page whose bytes follow {@link #current} (a page record's header), or -1. */
    private long pageBody = -1;
    private long emitted;
    /** W8: rounds of initial data begun after the first. */
    private long generation;
    /** Where the current round of initial data ended in the stream, or -1 while it has pages to go. */
    private long initialEnd = -1;

    /**
     * @param preCopyCapable whether the device has internal dirty logging and streams in pre-copy
     */
    public SaveStream(DeviceImage image, boolean preCopyCapable) {
        this.image = image;
        this.preCopyCapable = preCopyCapable;
        this.memory = image.memory();
        this.log = image.memoryLog();
        this.pages = memory.pages();
    }

    /** Step 7: pre-copy starts; internal dirty logging is on from here (W4). */
    public void startPreCopy() {
        if (preCopyCapable) {
            log.start();
        }
    }

    /**
     * Step 3: the device is frozen; what remains is fixed. The internal log stops but keeps the pages
     * it marked, which are streamed before the registers.
     */
    public void enterStopCopy() {
        stopCopy = true;
        log.stop();
    }

    public boolean inStopCopy() {
        return stopCopy;
    }

    /**
     * W8: the device's bulk state changed whole (a GPU re-partitioned its memory): every page is initial
     * data again, from the first, after the record being read. The header is not repeated. Nothing to do
     * without logging (nothing streams in pre-copy, W3) or in stop-and-copy (the device is frozen).
     */
    public void reinit() {
        if (stopCopy || !preCopyCapable) {
            return;
        }
        generation++;
        cursor = 0;
        initialEnd = -1;
    }

    /** F7: where the current round of initial data ends, and whether it has been read. */
    public InitialData initialData() {
        if (!preCopyCapable) {
            return InitialData.NONE;
        }
        long read = readBytes();
        if (initialEnd >= 0) {
            return new InitialData(generation, initialEnd, read >= initialEnd);
        }
        return new InitialData(generation, read + initialBytes(), false);
    }

    /** Bytes read from the stream so far. */
    public long readBytes() {
        return emitted - unread();
    }

    /** The end record has been read: in stop-and-copy, the end of the stream (W1). */
    public boolean finished() {
        return endSent && unread() == 0;
    }

    /** Bytes of the records produced that have not been read yet. */
    private long unread() {
        return current.remaining() + (pageBody >= 0 ? PageGeometry.PAGE_SIZE : 0);
    }

    /** W1: bytes ready to read now; in pre-copy 0 may be temporary, in stop-and-copy it is the end. */
    public long pendingBytes() {
        if (!streaming()) {
            return 0;
        }
        long pending = initialBytes() + dirtyBytes();
        if (stopCopy) {
            pending += (stateSent ? 0 : stateRecordBytes()) + (endSent ? 0 : StreamFormat.END_RECORD_BYTES);
        }
        return pending;
    }

    /** W4: data not yet read once: the header and the pages the first pass has not reached. */
    public long initialBytes() {
        if (!streaming()) {
            return 0;
        }
        long bytes = unread();
        if (!headerSent) {
            bytes += headerRecordBytes();
        }
        return bytes + pageRecordBytes(memory, cursor, pages);
    }

    /** W4: pages read once and written again since. */
    public long dirtyBytes() {
        if (!streaming()) {
            return 0;
        }
        return log.countBelow(cursor) * StreamFormat.PAGE_RECORD_BYTES;
    }

    /**
     * Copies up to {@code dst.remaining()} bytes of the stream into {@code dst}.
     *
     * @return the number of bytes copied; 0 when nothing is pending
     */
    public int read(ByteBuffer dst) {
        int copied = 0;
        while (dst.hasRemaining()) {
            if (!current.hasRemaining() && !produceNext()) {
                break;
            }
            int n = Math.min(dst.remaining(), current.remaining());
            int at = dst.position();
            dst.put(at, current, current.position(), n);
            current.position(current.position() + n);
            dst.position(at + n);
            if (summed) {
                crc.update(dst.duplicate().position(at).limit(at + n));
            }
            copied += n;
        }
        return copied;
    }

    /**
     * W9: what stop-and-copy would still stream if it began now, given the size of the device state it
     * would capture. In stop-and-copy, what is pending; in pre-copy with logging, the data not yet read
     * once, the pages written again since they were read, and the STATE and END records; without logging,
     * the whole stream (nothing is streamed in pre-copy, W3).
     */
    public long stopCopyBytes(long stateBytes) {
        if (stopCopy) {
            return pendingBytes();
        }
        if (!preCopyCapable) {
            return fullStreamBytes(image, stateBytes);
        }
        return initialBytes() + dirtyBytes() + StreamFormat.RECORD_HEADER_BYTES + stateBytes + StreamFormat.END_RECORD_BYTES;
    }

    /** The size of a whole stream of this device, read in one stop-and-copy. */
    public static long fullStreamBytes(DeviceImage image, long stateBytes) {
        PageStore memory = image.memory();
        return headerRecordBytes(image) + pageRecordBytes(memory, 0, memory.pages())
                + StreamFormat.RECORD_HEADER_BYTES + stateBytes + StreamFormat.END_RECORD_BYTES;
    }

    private boolean streaming() {
        return stopCopy || preCopyCapable;
    }

    private boolean produceNext() {
        if (!streaming()) {
            return false;
        }
        if (pageBody >= 0) {
            // A page whose memory was dropped since its header was produced (memory cleared) reads as zeros.
            ByteBuffer page = memory.pageView(pageBody);
            pageBody = -1;
            current = page != null ? page : ZERO_PAGE.duplicate();
            return true;
        }
        if (!headerSent) {
            headerSent = true;
            emit(header(image));
            return true;
        }
        if (cursor < pages) {
            long page = cursor++;
            if (log.isDirty(page)) {
                log.testAndClear(page);
            }
            emitPage(page);
            if (cursor == pages) {
                initialEnd = emitted;
            }
            return true;
        }
        long dirty = log.nextDirty(dirtyScan);
        if (dirty < 0 && dirtyScan > 0) {
            dirty = log.nextDirty(0);
        }
        if (dirty >= 0) {
            log.testAndClear(dirty);
            dirtyScan = dirty + 1;
            emitPage(dirty);
            return true;
        }
        if (!stopCopy) {
            return false;
        }
        if (!stateSent) {
            stateSent = true;
            byte[] registers = capturedState();
            ByteBuffer record = ByteBuffer.allocate(StreamFormat.RECORD_HEADER_BYTES + registers.length);
            record.put(StreamFormat.STATE).putInt(registers.length).put(registers).flip();
            emit(record);
            return true;
        }
        if (!endSent) {
            endSent = true;
            ByteBuffer end = ByteBuffer.allocate(StreamFormat.END_RECORD_BYTES);
            end.put(StreamFormat.END).putInt(StreamFormat.END_PAYLOAD_BYTES)
                    .putLong(emitted).putInt((int) crc.getValue()).flip();
            current = end;
            summed = false;
            return true;
        }
        return false;
    }

    private void emitPage(long page) {
        pageHeader.clear();
        if (!memory.isBacked(page)) {
            pageHeader.put(StreamFormat.ZERO).putInt(4).putInt((int) page);
        } else {
            pageHeader.put(StreamFormat.PAGE).putInt(4 + PageGeometry.PAGE_SIZE).putInt((int) page);
            pageBody = page;
            emitted += PageGeometry.PAGE_SIZE;
        }
        emit(pageHeader.flip());
    }

    /** {@code record} is read next; its bytes count in the checksum as they are read. */
    private void emit(ByteBuffer record) {
        emitted += record.remaining();
        current = record;
        summed = true;
    }

    private byte[] capturedState() {
        if (state == null) {
            state = image.captureState();
        }
        return state;
    }

    private long stateRecordBytes() {
        return StreamFormat.RECORD_HEADER_BYTES + capturedState().length;
    }

    private long headerRecordBytes() {
        return headerRecordBytes(image);
    }

    private static long headerRecordBytes(DeviceImage image) {
        return StreamFormat.RECORD_HEADER_BYTES + headerPayloadBytes(image);
    }

    private static int headerPayloadBytes(DeviceImage image) {
        return 4 + 2 + 1 + image.kind().length() + 2 + image.configBytes().length + 8 + 4;
    }

    private static long pageRecordBytes(PageStore memory, long from, long to) {
        long backed = memory.backedPagesIn(from, to);
        long zero = Math.max(0, to - from) - backed;
        return backed * StreamFormat.PAGE_RECORD_BYTES + zero * StreamFormat.ZERO_RECORD_BYTES;
    }

    static ByteBuffer header(DeviceImage image) {
        byte[] kind = image.kind().getBytes(StandardCharsets.US_ASCII);
        byte[] config = image.configBytes();
        if (kind.length > 255 || config.length > 1024) {
            throw new IllegalStateException("device kind or configuration too long for the stream header");
        }
        int payload = headerPayloadBytes(image);
        ByteBuffer header = ByteBuffer.allocate(StreamFormat.RECORD_HEADER_BYTES + payload);
        header.put(StreamFormat.HEADER).putInt(payload)
                .putInt(StreamFormat.MAGIC).putShort((short) image.formatVersion())
                .put((byte) kind.length).put(kind)
                .putShort((short) config.length).put(config)
                .putLong(image.memory().sizeBytes()).putInt(PageGeometry.PAGE_SIZE);
        return header.flip();
    }
}
