package dev.ferry.device;

import dev.ferry.device.memory.PageStore;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/** The digest of a device's full migrated state, and the SHA-256 helpers the VM's digests share. */
public final class DeviceDigest {
    private DeviceDigest() {
    }

    /** SHA-256 over the kind, the canonical configuration, the STATE record's bytes and the device memory. */
    static byte[] of(String kind, byte[] configBytes, byte[] state, PageStore memory) {
        MessageDigest sha = sha256();
        sha.update(kind.getBytes(StandardCharsets.US_ASCII));
        sha.update((byte) 0);
        sha.update(configBytes);
        sha.update(longBytes(state.length));
        sha.update(state);
        digestPages(sha, memory);
        return sha.digest();
    }

    /** Feeds every non-zero page as (index, bytes), then the page count: zero pages cost nothing. */
    public static void digestPages(MessageDigest sha, PageStore pages) {
        for (long page = 0; page < pages.pages(); page++) {
            if (!pages.isBacked(page)) {
                page = (page / pages.pagesPerChunk() + 1) * pages.pagesPerChunk() - 1;
                continue;
            }
            if (!pages.isZeroPage(page)) {
                sha.update(longBytes(page));
                sha.update(pages.pageView(page));
            }
        }
        sha.update(longBytes(pages.pages()));
    }

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every Java platform", e);
        }
    }

    private static byte[] longBytes(long value) {
        return ByteBuffer.allocate(8).putLong(value).array();
    }
}
