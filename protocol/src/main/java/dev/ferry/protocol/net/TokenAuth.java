package dev.ferry.protocol.net;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.SessionId;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Challenge and response on a shared token: each side proves it holds the token with an HMAC-SHA256
 * over the handshake transcript, under a label that differs by side so one side's proof is never
 * valid as the other's. The token itself never crosses the wire; proofs are compared in constant time.
 */
public final class TokenAuth {
    private static final byte[] KEY_PREFIX = "ferry-token-v1\0".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] SERVER_LABEL = "ferry server proof v1".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] CLIENT_LABEL = "ferry client proof v1".getBytes(StandardCharsets.US_ASCII);
    private static final SecureRandom RANDOM = new SecureRandom();

    private final SecretKeySpec key;

    /** @param token the shared token; empty when none is configured (any peer without one matches) */
    public TokenAuth(byte[] token) {
        byte[] material = new byte[KEY_PREFIX.length + token.length];
        System.arraycopy(KEY_PREFIX, 0, material, 0, KEY_PREFIX.length);
        System.arraycopy(token, 0, material, KEY_PREFIX.length, token.length);
        this.key = new SecretKeySpec(material, "HmacSHA256");
    }

    public static byte[] nonce() {
        byte[] nonce = new byte[Frame.NONCE_BYTES];
        RANDOM.nextBytes(nonce);
        return nonce;
    }

    byte[] serverProof(Frame.Hello hello, int version, byte[] serverNonce) {
        return mac(SERVER_LABEL, hello, version, serverNonce);
    }

    byte[] clientProof(Frame.Hello hello, int version, byte[] serverNonce) {
        return mac(CLIENT_LABEL, hello, version, serverNonce);
    }

    static boolean same(byte[] expected, byte[] actual) {
        return MessageDigest.isEqual(expected, actual);
    }

    private byte[] mac(byte[] label, Frame.Hello hello, int version, byte[] serverNonce) {
        SessionId session = hello.session();
        ByteBuffer transcript = ByteBuffer.allocate(8 + 2 + 1 + 1 + 16 + 2 * Frame.NONCE_BYTES)
                .putLong(hello.magic()).putShort((short) version).put((byte) hello.role()).put((byte) hello.channelIndex())
                .putLong(session.high()).putLong(session.low()).put(hello.nonce()).put(serverNonce);
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(key);
            mac.update(label);
            mac.update(transcript.array());
            return mac.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is required of every Java platform", e);
        }
    }
}
