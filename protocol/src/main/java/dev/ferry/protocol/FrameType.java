package dev.ferry.protocol;

/**
 * Every frame type, with its code and its payload size limits. A frame whose length is outside its
 * type's limits is refused before its payload is read.
 */
public enum FrameType {
    HELLO(0x01, Frame.Hello.BYTES, Frame.Hello.BYTES),
    CHALLENGE(0x02, Frame.Challenge.BYTES, Frame.Challenge.BYTES),
    AUTH(0x03, Frame.Auth.BYTES, Frame.Auth.BYTES),
    ACCEPT(0x04, 8, 8),
    REFUSE(0x05, 4, 4 + Frame.MAX_MESSAGE_BYTES),

    VM_DESCRIPTION(0x10, 18, 18 + Frame.VmDescription.MAX_DESCRIPTION_BYTES),
    VM_ACCEPTED(0x11, 0, 0),
    DEVICE_DATA(0x12, 10, 10 + Frame.DeviceData.MAX_CHUNK_BYTES),
    DEVICE_END(0x13, 10, 10),
    PHASE(0x14, 5, 5),
    ITERATION_END(0x15, 20, 20),
    PREPARE(0x16, 1, 1),
    PREPARED(0x17, 11, 11 + Frame.DIGEST_BYTES + 8 * Frame.MAX_DEVICES),
    COMMIT(0x18, 0, 0),
    CONFIRM(0x19, 10, 10 + 8 * Frame.MAX_DEVICES),
    ABORT(0x1a, 4, 4 + Frame.MAX_MESSAGE_BYTES),
    KEEPALIVE(0x1b, 8, 8),
    KEEPALIVE_ACK(0x1c, 8, 8),
    ITERATION_DONE(0x1d, 14, 14 + 16 * Frame.MAX_DEVICES),
    DEVICE_INITIAL(0x1e, 14, 14),
    SWITCHOVER_ACK(0x1f, 4, 4),
    VM_REFUSED(0x30, 8, 8 + 3 * Frame.MAX_MESSAGE_BYTES),

    PAGES(0x20, Frame.Pages.PREFIX_BYTES + Frame.Pages.ENTRY_BYTES, Frame.Pages.MAX_PAYLOAD_BYTES),
    DATA_END(0x21, 12, 12),
    ZERO_PAGES(0x23, 28, 28),
    COMPRESSED_PAGES(0x24, Frame.Pages.PREFIX_BYTES + Frame.Pages.ENTRY_BYTES + Frame.CompressedPages.MIN_BLOCK_BYTES,
            Frame.Pages.MAX_PAYLOAD_BYTES),
    CHANNEL_END(0x22, 8, 8);

    /** The largest payload of any frame type. */
    public static final int MAX_PAYLOAD;

    static {
        int max = 0;
        for (FrameType type : values()) {
            max = Math.max(max, type.maxPayload);
        }
        MAX_PAYLOAD = max;
    }

    private final int code;
    private final int minPayload;
    private final int maxPayload;

    FrameType(int code, int minPayload, int maxPayload) {
        this.code = code;
        this.minPayload = minPayload;
        this.maxPayload = maxPayload;
    }

    public int code() {
        return code;
    }

    public int minPayload() {
        return minPayload;
    }

    public int maxPayload() {
        return maxPayload;
    }

    /** The type with this code, or {@code null}. */
    public static FrameType of(int code) {
        for (FrameType type : values()) {
            if (type.code == code) {
                return type;
            }
        }
        return null;
    }
}
