package dev.ferry.protocol;

import io.netty.buffer.ByteBuf;
import java.security.SecureRandom;
import java.util.HexFormat;

/** The 16 random bytes that tie a migration's control and data channels together. */
public record SessionId(long high, long low) {
    private static final SecureRandom RANDOM = new SecureRandom();

    public static SessionId random() {
        return new SessionId(RANDOM.nextLong(), RANDOM.nextLong());
    }

    static SessionId read(ByteBuf in) {
        return new SessionId(in.readLong(), in.readLong());
    }

    void write(ByteBuf out) {
        out.writeLong(high).writeLong(low);
    }

    @Override
    public String toString() {
        return HexFormat.of().toHexDigits(high) + HexFormat.of().toHexDigits(low);
    }
}
