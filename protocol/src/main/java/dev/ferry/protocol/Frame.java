package dev.ferry.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.DefaultByteBufHolder;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * A frame's meaning: one record or holder per {@link FrameType}. {@link FrameEncoder} writes them
 * and {@link FrameDecoder} reads them; the layouts are in the protocol's README.
 *
 * <p>{@link Pages} and {@link DeviceData} hold buffers: whoever receives one must release it.
 */
public sealed interface Frame permits Frame.Hello, Frame.Challenge, Frame.Auth, Frame.Accept, Frame.Refuse,
        Frame.VmDescription, Frame.VmAccepted, Frame.DeviceData, Frame.DeviceEnd, Frame.Phase, Frame.IterationEnd,
        Frame.IterationDone, Frame.DeviceInitial, Frame.SwitchoverAck, Frame.VmRefused,
        Frame.Prepare, Frame.Prepared, Frame.Commit, Frame.Confirm, Frame.Abort, Frame.Keepalive,
        Frame.KeepaliveAck, Frame.Pages, Frame.CompressedPages, Frame.ZeroPages, Frame.DataEnd, Frame.ChannelEnd {

    /** "FERRYMIG". */
    long MAGIC = 0x464552_52594D4947L;
    int NONCE_BYTES = 32;
    int PROOF_BYTES = 32;
    int DIGEST_BYTES = 32;
    /** Human messages in REFUSE and ABORT are cut to this many UTF-8 bytes. */
    int MAX_MESSAGE_BYTES = 1024;
    /** Devices a frame may report on, at most (the VM description's devices, in order). */
    int MAX_DEVICES = 256;

    FrameType type();

    /**
     * Writes the payload, or for a buffer holder the part of it before its content; the encoder
     * appends the content itself without copying it.
     */
    void writeHead(ByteBuf out);

    // ---- handshake ---------------------------------------------------------------------------

    /** Client → server, first frame of every channel. */
    record Hello(long magic, int minVersion, int maxVersion, int role, int channelIndex, SessionId session,
                 byte[] nonce) implements Frame {
        public static final int BYTES = 8 + 2 + 2 + 1 + 1 + 16 + NONCE_BYTES;

        @Override
        public FrameType type() {
            return FrameType.HELLO;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeLong(magic).writeShort(minVersion).writeShort(maxVersion).writeByte(role).writeByte(channelIndex);
            session.write(out);
            out.writeBytes(nonce);
        }
    }

    /** Server → client: the version chosen, the server's nonce, and its proof of the token. */
    record Challenge(int version, byte[] nonce, byte[] proof) implements Frame {
        public static final int BYTES = 2 + NONCE_BYTES + PROOF_BYTES;

        @Override
        public FrameType type() {
            return FrameType.CHALLENGE;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeShort(version).writeBytes(nonce).writeBytes(proof);
        }
    }

    /** Client → server: the client's proof of the token. */
    record Auth(byte[] proof) implements Frame {
        public static final int BYTES = PROOF_BYTES;

        @Override
        public FrameType type() {
            return FrameType.AUTH;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeBytes(proof);
        }
    }

    /** Server → client: the channel is open; the limits the server enforces on it. */
    record Accept(int maxPayload, int keepaliveTimeoutMillis) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.ACCEPT;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeInt(maxPayload).writeInt(keepaliveTimeoutMillis);
        }
    }

    /** Server → client: the channel is refused, and why; the server closes it. */
    record Refuse(ErrorCode code, String message) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.REFUSE;
        }

        @Override
        public void writeHead(ByteBuf out) {
            writeCodeAndMessage(out, code, message);
        }
    }

    // ---- control channel ---------------------------------------------------------------------

    /**
     * Source → destination, first frame of a session: what the destination must host. The
     * description itself is opaque to the protocol (the daemon sends JSON).
     */
    record VmDescription(long memoryBytes, int pageSize, int dataChannels, byte[] description) implements Frame {
        public static final int MAX_DESCRIPTION_BYTES = 64 * 1024;
        /** A session has 1 to this many data channels. */
        public static final int MAX_DATA_CHANNELS = 16;

        @Override
        public FrameType type() {
            return FrameType.VM_DESCRIPTION;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeLong(memoryBytes).writeInt(pageSize).writeShort(dataChannels).writeInt(description.length)
                    .writeBytes(description);
        }
    }

    /** Destination → source: the VM is compatible and its shell is built. */
    record VmAccepted() implements Frame {
        @Override
        public FrameType type() {
            return FrameType.VM_ACCEPTED;
        }

        @Override
        public void writeHead(ByteBuf out) {
        }
    }

    /**
     * Source → destination: the next bytes of one device's migration data. {@code offset} is how many
     * bytes of that device's stream came before; chunks arrive in order.
     */
    final class DeviceData extends DefaultByteBufHolder implements Frame {
        public static final int MAX_CHUNK_BYTES = 256 * 1024;
        /** Bytes of a DEVICE_DATA frame besides its chunk: the header, the device and the offset. */
        public static final int WIRE_OVERHEAD = FrameHeader.BYTES + 10;
        private final int device;
        private final long offset;

        public DeviceData(int device, long offset, ByteBuf data) {
            super(data);
            this.device = device;
            this.offset = offset;
        }

        public int device() {
            return device;
        }

        public long offset() {
            return offset;
        }

        @Override
        public FrameType type() {
            return FrameType.DEVICE_DATA;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeShort(device).writeLong(offset);
        }

        @Override
        public String toString() {
            return "DeviceData[device=" + device + ", offset=" + offset + ", bytes=" + content().readableBytes() + "]";
        }
    }

    /** Source → destination: a device's stream is complete at {@code totalBytes}. */
    record DeviceEnd(int device, long totalBytes) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.DEVICE_END;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeShort(device).writeLong(totalBytes);
        }
    }

    /** Source → destination: the source's flow entered a phase ({@link PhaseCode} code). */
    record Phase(int phase, int iteration) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.PHASE;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeByte(phase).writeInt(iteration);
        }
    }

    /** Source → destination: an iteration's pages are all queued on the data channels. */
    record IterationEnd(int iteration, long pages, long bytes) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.ITERATION_END;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeInt(iteration).writeLong(pages).writeLong(bytes);
        }
    }

    /**
     * Destination → source: everything of iteration {@code iteration} and before is applied: its pages
     * (DATA_END on every data channel) and every control frame up to its ITERATION_END, device data
     * included. The source waits for it before it decides whether pre-copy has converged, so that its
     * estimate never leaves a backlog at the destination for the downtime.
     */
    record IterationDone(int iteration, long verifyMicros, List<DeviceLoad> devices) implements Frame {
        /** A device's loading so far (W7): the bytes of its stream it has processed, and the time that took. */
        public record DeviceLoad(long loadedBytes, long loadMicros) {
        }

        /**
         * @param verifyMicros how long the destination spent, after the iteration's pages had all arrived,
         *                     bringing its verify digest up to date (0 without verify): time the source's
         *                     bandwidth measure leaves out
         */
        public IterationDone {
            devices = List.copyOf(devices);
        }

        public IterationDone(int iteration) {
            this(iteration, 0, List.of());
        }

        @Override
        public FrameType type() {
            return FrameType.ITERATION_DONE;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeInt(iteration).writeLong(verifyMicros).writeShort(devices.size());
            for (DeviceLoad load : devices) {
                out.writeLong(load.loadedBytes()).writeLong(load.loadMicros());
            }
        }
    }

    /**
     * Source → destination: device {@code device}'s initial data of round {@code generation} (W4, W8)
     * ends at {@code endOffset} of its stream, which the source has sent. The destination acknowledges
     * the switchover (SWITCHOVER_ACK) once every device has processed its latest such round (F7).
     */
    record DeviceInitial(int device, long generation, long endOffset) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.DEVICE_INITIAL;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeShort(device).writeInt((int) generation).writeLong(endOffset);
        }
    }

    /**
     * Destination → source: the first {@code sequence} DEVICE_INITIAL frames of the session are all
     * processed (F7); the source may switch over once it has sent no newer one.
     */
    record SwitchoverAck(long sequence) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.SWITCHOVER_ACK;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeInt((int) sequence);
        }
    }

    /**
     * Destination → source, instead of VM_ACCEPTED: the destination cannot host a device of the
     * described VM (F8), which one, which field, and why; nothing was allocated. The destination
     * closes the session after it.
     */
    record VmRefused(ErrorCode code, String device, String field, String reason) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.VM_REFUSED;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeShort(code.code());
            writeString(out, device);
            writeString(out, field);
            writeString(out, reason);
        }
    }

    /**
     * Source → destination: everything is sent; load every device and wait at the barrier. With
     * {@code verify} the destination digests the loaded VM and answers with the digest, which the
     * source compares with its own (computed meanwhile).
     */
    record Prepare(boolean verify) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.PREPARE;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeByte(verify ? 1 : 0);
        }
    }

    /**
     * Destination → source: every device loaded; the destination's digest if asked, its load time, and
     * each device's load time (R3), in the description's order.
     */
    record Prepared(byte[] digest, long loadMicros, List<Long> deviceLoadMicros) implements Frame {
        public Prepared {
            deviceLoadMicros = List.copyOf(deviceLoadMicros);
        }

        public Prepared(byte[] digest, long loadMicros) {
            this(digest, loadMicros, List.of());
        }

        @Override
        public FrameType type() {
            return FrameType.PREPARED;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeByte(digest.length).writeBytes(digest).writeLong(loadMicros).writeShort(deviceLoadMicros.size());
            deviceLoadMicros.forEach(out::writeLong);
        }
    }

    /** Source → destination: the switchover; from here the source never restarts the VM by itself. */
    record Commit() implements Frame {
        @Override
        public FrameType type() {
            return FrameType.COMMIT;
        }

        @Override
        public void writeHead(ByteBuf out) {
        }
    }

    /** Destination → source: devices RUNNING and vCPUs restarted; how long that took, and for each device (R4). */
    record Confirm(long resumeMicros, List<Long> deviceResumeMicros) implements Frame {
        public Confirm {
            deviceResumeMicros = List.copyOf(deviceResumeMicros);
        }

        public Confirm(long resumeMicros) {
            this(resumeMicros, List.of());
        }

        @Override
        public FrameType type() {
            return FrameType.CONFIRM;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeLong(resumeMicros).writeShort(deviceResumeMicros.size());
            deviceResumeMicros.forEach(out::writeLong);
        }
    }

    /** Either side: the session ends, and why. */
    record Abort(ErrorCode code, String message) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.ABORT;
        }

        @Override
        public void writeHead(ByteBuf out) {
            writeCodeAndMessage(out, code, message);
        }
    }

    /** Either side, any channel: liveness; the peer echoes the token in {@link KeepaliveAck}. */
    record Keepalive(long token) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.KEEPALIVE;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeLong(token);
        }
    }

    record KeepaliveAck(long token) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.KEEPALIVE_ACK;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeLong(token);
        }
    }

    // ---- data channels -----------------------------------------------------------------------

    /**
     * Source → destination: up to {@link #MAX_PAGES} pages of one iteration. The payload is
     * {@code iteration:u32 count:u16}, then {@code count} entries of {@code index:u64 crc:u32} (bit 63 of
     * the index: a zero page, which has no bytes and a crc of 0), then the 4096 bytes of every non-zero
     * page, in entry order. The frame's own CRC covers its header, the prefix and the entries (the
     * frame's <em>meta</em>); each page's bytes are covered by the CRC32C in its entry, checked where
     * the page lands. A page whose bytes do not match arrives <em>torn</em>: its source changed it while
     * it was being sent, so the source's dirty log holds it and a later pass sends it again (a page still
     * torn at the end fails the migration, F11). Built with {@link PagesBuilder}; read with
     * {@link #forEach}.
     *
     * <p>A frame is either whole (its content holds the meta and the page bytes) or <em>placed</em>: the
     * decoder read the page bytes straight into the pages they belong to and checked them there; the
     * content holds the meta only, and {@link #forEach} reports each page as intact or torn.
     */
    final class Pages extends DefaultByteBufHolder implements Frame {
        public static final int PAGE_SIZE = 4096;
        public static final int MAX_PAGES = 64;
        public static final long ZERO_FLAG = 1L << 63;
        public static final int PREFIX_BYTES = 6;
        public static final int ENTRY_BYTES = 12;
        public static final int MAX_PAYLOAD_BYTES = PREFIX_BYTES + MAX_PAGES * (ENTRY_BYTES + PAGE_SIZE);
        private final int iteration;
        private final int count;
        private final int zeroPages;
        private final boolean placed;
        /** Placed frames: the pages, by entry position, whose bytes did not match their CRC. */
        private final long torn;
        /** What the frame took on the wire when it came compressed, else -1. */
        private final long compressedWireBytes;

        Pages(int iteration, int count, ByteBuf content) {
            this(iteration, count, content, false, 0, -1);
        }

        private Pages(int iteration, int count, ByteBuf content, boolean placed, long torn, long compressedWireBytes) {
            super(content);
            this.iteration = iteration;
            this.count = count;
            this.placed = placed;
            this.torn = torn;
            this.compressedWireBytes = compressedWireBytes;
            int zero = 0;
            int at = content.readerIndex() + PREFIX_BYTES;
            for (int i = 0; i < count; i++) {
                if ((content.getLong(at + ENTRY_BYTES * i) & ZERO_FLAG) != 0) {
                    zero++;
                }
            }
            this.zeroPages = zero;
        }

        /** A frame whose page bytes are already in their pages: {@code meta} is its prefix and entries. */
        static Pages placed(int iteration, int count, ByteBuf meta, long torn) {
            return new Pages(iteration, count, meta, true, torn, -1);
        }

        /** A frame that came as COMPRESSED_PAGES of {@code wireBytes}, its page bytes decompressed into {@code content}. */
        static Pages decompressed(int iteration, int count, ByteBuf content, long wireBytes) {
            return new Pages(iteration, count, content, false, 0, wireBytes);
        }

        /** The prefix and entries of a frame of {@code count} pages. */
        public static int metaBytes(int count) {
            return PREFIX_BYTES + ENTRY_BYTES * count;
        }

        public int iteration() {
            return iteration;
        }

        public int count() {
            return count;
        }

        /** Pages sent as a zero flag only, without data. */
        public int zeroPages() {
            return zeroPages;
        }

        /** Whether the page bytes went straight to their pages (the content holds the meta only). */
        public boolean placed() {
            return placed;
        }

        /** The frame's size on the wire, header included (compressed, if it came so). */
        public long wireBytes() {
            return compressedWireBytes >= 0 ? compressedWireBytes
                    : FrameHeader.BYTES + metaBytes(count) + (long) (count - zeroPages) * PAGE_SIZE;
        }

        @Override
        public FrameType type() {
            return FrameType.PAGES;
        }

        @Override
        public void writeHead(ByteBuf out) {
        }

        /** Receives each page of a {@link Pages} frame, in entry order. */
        public interface PageVisitor {
            /** A zero page: no bytes came. */
            void zero(long index);

            /**
             * A page whose bytes match their CRC. {@code data} holds them from its position (a view valid
             * only during the call), or is {@code null} when they are in the page already (a placed frame).
             */
            void intact(long index, ByteBuffer data);

            /** A page whose bytes did not match their CRC: changed while sent, or damaged. */
            void torn(long index);

            /** A stretch of consecutive zero pages (from ZERO_PAGES); by default, each page. */
            default void zeroStretch(long first, long count) {
                for (long page = first; page < first + count; page++) {
                    zero(page);
                }
            }
        }

        /** Each page's index, in entry order. */
        public void forEachIndex(java.util.function.LongConsumer action) {
            ByteBuf buf = content();
            int at = buf.readerIndex() + PREFIX_BYTES;
            for (int i = 0; i < count; i++) {
                action.accept(buf.getLong(at + ENTRY_BYTES * i) & ~ZERO_FLAG);
            }
        }

        /**
         * Visits every page in order, checking each page's bytes against its CRC (a placed frame was
         * checked where it landed). Reads the frame through NIO views of its buffers, not per-page buffer
         * calls; a page that straddles two received buffers is gathered into one scratch page.
         */
        public void forEach(PageVisitor visitor) {
            ByteBuf buf = content();
            int start = buf.readerIndex();
            int meta = metaBytes(count);
            ByteBuffer[] parts = placed || buf.readableBytes() == meta ? new ByteBuffer[0]
                    : buf.nioBuffers(start + meta, buf.readableBytes() - meta);
            int part = 0;
            ByteBuffer scratch = null;
            CRC32C crc = placed ? null : new CRC32C();
            for (int i = 0; i < count; i++) {
                long entry = buf.getLong(start + PREFIX_BYTES + ENTRY_BYTES * i);
                long index = entry & ~ZERO_FLAG;
                if ((entry & ZERO_FLAG) != 0) {
                    visitor.zero(index);
                    continue;
                }
                if (placed) {
                    if ((torn & (1L << i)) != 0) {
                        visitor.torn(index);
                    } else {
                        visitor.intact(index, null);
                    }
                    continue;
                }
                while (!parts[part].hasRemaining()) {
                    part++;
                }
                ByteBuffer current = parts[part];
                ByteBuffer page;
                if (current.remaining() >= PAGE_SIZE) {
                    page = current.slice(current.position(), PAGE_SIZE);
                    current.position(current.position() + PAGE_SIZE);
                } else {
                    if (scratch == null) {
                        scratch = ByteBuffer.allocateDirect(PAGE_SIZE);
                    }
                    scratch.clear();
                    while (scratch.hasRemaining()) {
                        ByteBuffer from = parts[part];
                        int n = Math.min(from.remaining(), scratch.remaining());
                        scratch.put(from.slice(from.position(), n));
                        from.position(from.position() + n);
                        if (!from.hasRemaining() && scratch.hasRemaining()) {
                            part++;
                        }
                    }
                    page = scratch.flip();
                }
                crc.reset();
                crc.update(page.duplicate());
                if ((int) crc.getValue() == buf.getInt(start + PREFIX_BYTES + ENTRY_BYTES * i + 8)) {
                    visitor.intact(index, page);
                } else {
                    visitor.torn(index);
                }
            }
        }

        @Override
        public String toString() {
            return "Pages[iteration=" + iteration + ", count=" + count + ", zeroPages=" + zeroPages + (placed ? ", placed" : "")
                    + "]";
        }
    }

    /**
     * Source → destination, data channel: a PAGES frame whose page bytes go compressed (the migration's
     * {@code compression}): the same prefix and entries, then {@code codec:u8} and one block, the bytes
     * of every non-zero page in entry order compressed together. Its CRC covers the whole payload, which
     * a receiver reads whole; it decompresses the block, which must come to exactly the pages' bytes,
     * and delivers the frame as {@link Pages} (each page still checked against its own CRC). A sender
     * sends one only when it is smaller than the PAGES frame it stands for, so it is never longer.
     */
    final class CompressedPages extends DefaultByteBufHolder implements Frame {
        /** Its payload's size beyond the meta: the codec byte and a block of at least one byte. */
        public static final int MIN_BLOCK_BYTES = 2;
        private final int count;
        private final int zeroPages;

        /** @param content the payload: prefix, entries, codec and block */
        public CompressedPages(int count, int zeroPages, ByteBuf content) {
            super(content);
            this.count = count;
            this.zeroPages = zeroPages;
        }

        public int count() {
            return count;
        }

        public int zeroPages() {
            return zeroPages;
        }

        @Override
        public FrameType type() {
            return FrameType.COMPRESSED_PAGES;
        }

        @Override
        public void writeHead(ByteBuf out) {
        }

        @Override
        public String toString() {
            return "CompressedPages[count=" + count + ", zeroPages=" + zeroPages + ", bytes=" + content().readableBytes() + "]";
        }
    }

    /**
     * Source → destination, data channel: every page of {@code [first, first + count)} that this channel
     * carries ({@link PageRouting}) is zero; {@code pages} is how many that is. Sent for memory the
     * source never wrote, so that an idle VM's pages cost a frame per stretch rather than an entry each.
     */
    record ZeroPages(int iteration, long first, long count, long pages) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.ZERO_PAGES;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeInt(iteration).writeLong(first).writeLong(count).writeLong(pages);
        }
    }

    /** Source → destination, data channel: this channel's pages of {@code iteration} are all sent. */
    record DataEnd(int iteration, long pages) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.DATA_END;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeInt(iteration).writeLong(pages);
        }
    }

    /** Source → destination, data channel: nothing more will come on this channel. */
    record ChannelEnd(long pages) implements Frame {
        @Override
        public FrameType type() {
            return FrameType.CHANNEL_END;
        }

        @Override
        public void writeHead(ByteBuf out) {
            out.writeLong(pages);
        }
    }

    // ---- helpers -----------------------------------------------------------------------------

    /** {@code length:u16} and at most {@link #MAX_MESSAGE_BYTES} UTF-8 bytes. */
    private static void writeString(ByteBuf out, String text) {
        byte[] bytes = text == null ? new byte[0] : text.getBytes(StandardCharsets.UTF_8);
        int length = Math.min(bytes.length, MAX_MESSAGE_BYTES);
        out.writeShort(length).writeBytes(bytes, 0, length);
    }

    private static void writeCodeAndMessage(ByteBuf out, ErrorCode code, String message) {
        byte[] text = message == null ? new byte[0] : message.getBytes(StandardCharsets.UTF_8);
        int length = Math.min(text.length, MAX_MESSAGE_BYTES);
        out.writeShort(code.code()).writeShort(length).writeBytes(text, 0, length);
    }
}
