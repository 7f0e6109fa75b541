package dev.ferry.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.DecoderException;
import java.nio.charset.StandardCharsets;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * Reads frames, strictly. The header is checked as soon as its 16 bytes are in (type, length
 * against the type's limits, flags, sequence), so garbage or an oversize length fails before any
 * payload is buffered; a peer can make this decoder hold at most one frame of its type's maximum.
 * The CRC is then checked over the bytes exactly as received, and the payload's structure before
 * the frame is passed on. After the first error every further byte is discarded: nothing a peer
 * sends past the point of failure is delivered.
 *
 * <p>The types a peer may send can be narrowed ({@link #allowOnly}): a handshake accepts only its next
 * frame, so a peer that has proven nothing cannot make the decoder wait for, or hold, the payload of a
 * session frame; a frame of another type fails as {@code out_of_order} as soon as its header is in.
 *
 * <p>Page runs and device data are delivered as slices of the received buffers, not copies.
 */
public final class FrameDecoder extends ByteToMessageDecoder {
    /** A decoding failure; its cause is the {@link ProtocolException}. */
    public static final class FrameException extends DecoderException {
        FrameException(ProtocolException cause) {
            super(cause.toString(), cause);
        }

        public ProtocolException protocolException() {
            return (ProtocolException) getCause();
        }
    }

    private final int maxPayload;
    private final EnumSet<FrameType> allowed = EnumSet.allOf(FrameType.class);
    private int expectedSequence;
    private boolean failed;
    private volatile ProtocolException failure;
    /** When bytes last arrived, frame or not: a frame trickling in over a slow link is progress too. */
    private volatile long lastReadNanos = System.nanoTime();

    public FrameDecoder() {
        this(FrameType.MAX_PAYLOAD);
    }

    public FrameDecoder(int maxPayload) {
        this.maxPayload = maxPayload;
        // Large frames arrive in many reads; composing them avoids a copy per read.
        setCumulator(COMPOSITE_CUMULATOR);
    }

    /**
     * Why decoding stopped, or null. Set before the failure is thrown, so a handler that learns of the
     * channel's end first (the end of input is reported before the decoder's failure) still knows.
     */
    public ProtocolException failure() {
        return failure;
    }

    /** When the last bytes arrived from the peer ({@link System#nanoTime()}). */
    public long lastReadNanos() {
        return lastReadNanos;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
        lastReadNanos = System.nanoTime();
        super.channelRead(ctx, msg);
    }

    /**
     * From the next frame on, only frames of these types are accepted. Call on the channel's event loop
     * (a handler that receives a frame may change what the next one can be, even in the same read).
     */
    public void allowOnly(Set<FrameType> types) {
        allowed.clear();
        allowed.addAll(types);
    }

    /** From the next frame on, every type is accepted (the session rules then decide what is in order). */
    public void allowAll() {
        allowed.addAll(EnumSet.allOf(FrameType.class));
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (failed) {
            in.skipBytes(in.readableBytes());
            return;
        }
        try {
            Frame frame = next(in);
            if (frame != null) {
                out.add(frame);
            }
        } catch (ProtocolException e) {
            failed = true;
            failure = e;
            in.skipBytes(in.readableBytes());
            throw new FrameException(e);
        }
    }

    @Override
    protected void decodeLast(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        decode(ctx, in, out);
        if (!failed && in.isReadable()) {
            int partial = in.readableBytes();
            failed = true;
            failure = new ProtocolException(ErrorCode.TRUNCATED, "connection closed inside a frame, " + partial + " bytes into it");
            in.skipBytes(partial);
            throw new FrameException(failure);
        }
    }

    /**
     * Reads one whole frame, header and payload, with every check a channel's decoder makes except the
     * sequence, which only a channel can know: for tools that read frames outside a channel (a
     * capture's inspector checks the sequence against its own count). Fails as {@code truncated} when
     * {@code frame} holds less than the header says. A {@link Frame.Pages} or {@link Frame.DeviceData}
     * returned holds a slice of {@code frame}: release it.
     */
    public static Frame read(ByteBuf frame) throws ProtocolException {
        FrameDecoder decoder = new FrameDecoder();
        if (frame.readableBytes() >= FrameHeader.BYTES) {
            decoder.expectedSequence = frame.getInt(frame.readerIndex() + 8);
        }
        Frame decoded = decoder.next(frame);
        if (decoded == null) {
            throw new ProtocolException(ErrorCode.TRUNCATED, "the frame ends after " + frame.readableBytes() + " bytes"
                    + (frame.readableBytes() >= FrameHeader.BYTES ? ", its header says " + (FrameHeader.BYTES + frame.getUnsignedInt(
                    frame.readerIndex())) : ""));
        }
        return decoded;
    }

    private Frame next(ByteBuf in) throws ProtocolException {
        if (in.readableBytes() < FrameHeader.BYTES) {
            return null;
        }
        int start = in.readerIndex();
        long length = in.getUnsignedInt(start);
        int code = in.getUnsignedByte(start + 4);
        FrameType type = FrameType.of(code);
        if (type == null) {
            throw new ProtocolException(ErrorCode.UNKNOWN_TYPE, String.format("unknown frame type 0x%02x", code));
        }
        if (!allowed.contains(type)) {
            throw new ProtocolException(ErrorCode.OUT_OF_ORDER, type + " frame where only " + (allowed.isEmpty() ? "nothing"
                    : allowed.toString()) + " may come");
        }
        if (length > type.maxPayload() || length > maxPayload) {
            throw new ProtocolException(ErrorCode.OVERSIZE, type + " frame of " + length + " bytes exceeds its limit of "
                    + Math.min(type.maxPayload(), maxPayload));
        }
        if (length < type.minPayload()) {
            throw new ProtocolException(ErrorCode.MALFORMED, type + " frame of " + length + " bytes is shorter than "
                    + type.minPayload());
        }
        if (in.getUnsignedByte(start + 5) != 0 || in.getUnsignedShort(start + 6) != 0) {
            throw new ProtocolException(ErrorCode.MALFORMED, type + " frame has flags or reserved bits set");
        }
        int sequence = in.getInt(start + 8);
        if (sequence != expectedSequence) {
            throw new ProtocolException(ErrorCode.OUT_OF_SEQUENCE, type + " frame has sequence "
                    + Integer.toUnsignedString(sequence) + ", expected " + Integer.toUnsignedString(expectedSequence));
        }
        int total = FrameHeader.BYTES + (int) length;
        if (in.readableBytes() < total) {
            return null;
        }
        int declared = in.getInt(start + FrameHeader.CRC_OFFSET);
        int actual = FrameHeader.crc(in, start, in, start + FrameHeader.BYTES, (int) length);
        if (declared != actual) {
            throw new ProtocolException(ErrorCode.CHECKSUM, String.format("%s frame %d: CRC32C %08x, computed %08x",
                    type, sequence, declared, actual));
        }
        Frame frame = parse(type, in, start + FrameHeader.BYTES, (int) length);
        expectedSequence++;
        in.readerIndex(start + total);
        return frame;
    }

    private static Frame parse(FrameType type, ByteBuf in, int index, int length) throws ProtocolException {
        ByteBuf p = in.slice(index, length);
        Frame frame = switch (type) {
            case HELLO -> new Frame.Hello(p.readLong(), p.readUnsignedShort(), p.readUnsignedShort(), p.readUnsignedByte(),
                    p.readUnsignedByte(), new SessionId(p.readLong(), p.readLong()), bytes(p, Frame.NONCE_BYTES));
            case CHALLENGE -> new Frame.Challenge(p.readUnsignedShort(), bytes(p, Frame.NONCE_BYTES), bytes(p, Frame.PROOF_BYTES));
            case AUTH -> new Frame.Auth(bytes(p, Frame.PROOF_BYTES));
            case ACCEPT -> new Frame.Accept(p.readInt(), p.readInt());
            case REFUSE -> {
                ErrorCode code = ErrorCode.of(p.readUnsignedShort());
                yield new Frame.Refuse(code, message(type, p));
            }
            case ABORT -> {
                ErrorCode code = ErrorCode.of(p.readUnsignedShort());
                yield new Frame.Abort(code, message(type, p));
            }
            case VM_DESCRIPTION -> {
                long memory = p.readLong();
                int pageSize = p.readInt();
                int channels = p.readUnsignedShort();
                long size = p.readUnsignedInt();
                if (memory < 0 || size != p.readableBytes()) {
                    throw malformed(type, "memory size or description length does not match the frame");
                }
                if (channels < 1 || channels > Frame.VmDescription.MAX_DATA_CHANNELS) {
                    throw malformed(type, "dataChannels " + channels + " outside [1, " + Frame.VmDescription.MAX_DATA_CHANNELS + "]");
                }
                yield new Frame.VmDescription(memory, pageSize, channels, bytes(p, (int) size));
            }
            case VM_ACCEPTED -> new Frame.VmAccepted();
            case DEVICE_DATA -> {
                int device = p.readUnsignedShort();
                long offset = p.readLong();
                if (offset < 0) {
                    throw malformed(type, "negative offset");
                }
                yield new Frame.DeviceData(device, offset, in.retainedSlice(index + 10, length - 10));
            }
            case DEVICE_END -> new Frame.DeviceEnd(p.readUnsignedShort(), nonNegative(type, p.readLong()));
            case PHASE -> new Frame.Phase(p.readUnsignedByte(), p.readInt());
            case ITERATION_END -> new Frame.IterationEnd(p.readInt(), nonNegative(type, p.readLong()), nonNegative(type, p.readLong()));
            case PREPARE -> {
                int verify = p.readUnsignedByte();
                if (verify > 1) {
                    throw malformed(type, "verify flag " + verify);
                }
                yield new Frame.Prepare(verify == 1);
            }
            case PREPARED -> new Frame.Prepared(digest(type, p), nonNegative(type, p.readLong()), longs(type, p));
            case COMMIT -> new Frame.Commit();
            case CONFIRM -> new Frame.Confirm(nonNegative(type, p.readLong()), longs(type, p));
            case KEEPALIVE -> new Frame.Keepalive(p.readLong());
            case KEEPALIVE_ACK -> new Frame.KeepaliveAck(p.readLong());
            case ITERATION_DONE -> {
                int iteration = p.readInt();
                long verifyMicros = nonNegative(type, p.readLong());
                int count = count(type, p, 16);
                List<Frame.IterationDone.DeviceLoad> loads = new java.util.ArrayList<>(count);
                for (int i = 0; i < count; i++) {
                    loads.add(new Frame.IterationDone.DeviceLoad(nonNegative(type, p.readLong()), nonNegative(type, p.readLong())));
                }
                yield new Frame.IterationDone(iteration, verifyMicros, loads);
            }
            case DEVICE_INITIAL -> new Frame.DeviceInitial(p.readUnsignedShort(), p.readUnsignedInt(), nonNegative(type, p.readLong()));
            case SWITCHOVER_ACK -> new Frame.SwitchoverAck(p.readUnsignedInt());
            case VM_REFUSED -> {
                ErrorCode code = ErrorCode.of(p.readUnsignedShort());
                yield new Frame.VmRefused(code, string(type, p), string(type, p), string(type, p));
            }
            case PAGES -> pages(in, index, length);
            case DATA_END -> new Frame.DataEnd(p.readInt(), nonNegative(type, p.readLong()));
            case CHANNEL_END -> new Frame.ChannelEnd(nonNegative(type, p.readLong()));
        };
        if (p.isReadable() && !(frame instanceof Frame.DeviceData) && !(frame instanceof Frame.Pages)) {
            releaseIfHolder(frame);
            throw malformed(type, p.readableBytes() + " bytes left after the payload");
        }
        return frame;
    }

    /** Checks the entries' structure and hands out the payload without copying it. */
    private static Frame.Pages pages(ByteBuf in, int index, int length) throws ProtocolException {
        int iteration = in.getInt(index);
        int count = in.getUnsignedShort(index + 4);
        if (count == 0 || count > Frame.Pages.MAX_PAGES) {
            throw malformed(FrameType.PAGES, "page count " + count + " outside [1, " + Frame.Pages.MAX_PAGES + "]");
        }
        if (6 + 8 * count > length) {
            throw malformed(FrameType.PAGES, count + " entries run past the frame");
        }
        long expected = 6 + 8L * count;
        java.nio.ByteBuffer entries = in.nioBuffer(index + 6, 8 * count);
        for (int i = 0; i < count; i++) {
            if ((entries.getLong(entries.position() + 8 * i) & Frame.Pages.ZERO_FLAG) == 0) {
                expected += Frame.Pages.PAGE_SIZE;
            }
        }
        if (expected != length) {
            throw malformed(FrameType.PAGES, count + " entries need " + expected + " bytes, the frame has " + length);
        }
        return new Frame.Pages(iteration, count, in.retainedSlice(index, length));
    }

    private static String message(FrameType type, ByteBuf p) throws ProtocolException {
        int length = p.readUnsignedShort();
        if (length > Frame.MAX_MESSAGE_BYTES || length != p.readableBytes()) {
            throw malformed(type, "message length " + length + " does not match the frame");
        }
        return p.readCharSequence(length, StandardCharsets.UTF_8).toString();
    }

    /** A count of {@code size}-byte entries that must fit what is left of the payload exactly. */
    private static int count(FrameType type, ByteBuf p, int size) throws ProtocolException {
        int count = p.readUnsignedShort();
        if (count > Frame.MAX_DEVICES || (long) count * size != p.readableBytes()) {
            throw malformed(type, count + " entries do not match the frame");
        }
        return count;
    }

    private static List<Long> longs(FrameType type, ByteBuf p) throws ProtocolException {
        int count = count(type, p, 8);
        List<Long> values = new java.util.ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            values.add(nonNegative(type, p.readLong()));
        }
        return values;
    }

    /** {@code length:u16} and that many UTF-8 bytes, at most {@link Frame#MAX_MESSAGE_BYTES}. */
    private static String string(FrameType type, ByteBuf p) throws ProtocolException {
        if (p.readableBytes() < 2) {
            throw malformed(type, "a string runs past the frame");
        }
        int length = p.readUnsignedShort();
        if (length > Frame.MAX_MESSAGE_BYTES || length > p.readableBytes()) {
            throw malformed(type, "a string of " + length + " bytes does not fit the frame");
        }
        return p.readCharSequence(length, StandardCharsets.UTF_8).toString();
    }

    private static byte[] digest(FrameType type, ByteBuf p) throws ProtocolException {
        int length = p.readUnsignedByte();
        if (length != 0 && length != Frame.DIGEST_BYTES) {
            throw malformed(type, "digest of " + length + " bytes; 0 or " + Frame.DIGEST_BYTES + " expected");
        }
        if (p.readableBytes() < length) {
            throw malformed(type, "digest runs past the frame");
        }
        return bytes(p, length);
    }

    private static long nonNegative(FrameType type, long value) throws ProtocolException {
        if (value < 0) {
            throw malformed(type, "negative count " + value);
        }
        return value;
    }

    private static byte[] bytes(ByteBuf p, int n) {
        byte[] out = new byte[n];
        p.readBytes(out);
        return out;
    }

    private static ProtocolException malformed(FrameType type, String what) {
        return new ProtocolException(ErrorCode.MALFORMED, type + " frame: " + what);
    }

    private static void releaseIfHolder(Frame frame) {
        if (frame instanceof io.netty.util.ReferenceCounted counted) {
            counted.release();
        }
    }
}
