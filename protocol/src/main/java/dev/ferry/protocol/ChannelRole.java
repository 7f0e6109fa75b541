package dev.ferry.protocol;

/** What a channel carries. */
public enum ChannelRole {
    /** One per session: VM description, device data, phases, commit, confirmation, abort. */
    CONTROL(1),
    /** Any number per session, up to the limit: memory page runs. */
    DATA(2);

    private final int code;

    ChannelRole(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    /** The role with this wire code, or {@code null}. */
    public static ChannelRole of(int code) {
        for (ChannelRole role : values()) {
            if (role.code == code) {
                return role;
            }
        }
        return null;
    }
}
