package dev.ferry.protocol.compression;

import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.ProtocolException;
import java.nio.ByteBuffer;
import java.util.Locale;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;

/**
 * How a migration compresses its page data (its {@code compression}): not at all, or each frame's page
 * bytes as one block with LZ4 or zstd. Each frame is compressed on its own, so a receiver decodes any
 * frame without the ones before it (frames travel on several channels) and a damaged one costs only
 * itself. The code is the byte a COMPRESSED_PAGES frame names its codec with.
 *
 * <p>zstd runs at level 1: compression pays only on links slower than the CPU that compresses, and level
 * 1 keeps a core well ahead of a 1 Gbit/s link (its ratio on text-like pages is within a few percent of
 * the default level's, at several times the speed). LZ4 is for faster links: less ratio, far less CPU.
 */
public enum PageCodec {
    NONE("none", 0),
    LZ4("lz4", 1),
    ZSTD("zstd", 2);

    /** zstd's level: see above. */
    static final int ZSTD_LEVEL = 1;

    private final String label;
    private final int code;
    /** Whether {@link #check} found the codec working, once it did. */
    private volatile boolean checked;

    PageCodec(String label, int code) {
        this.label = label;
        this.code = code;
    }

    /** The name the API and the VM description use. */
    public String label() {
        return label;
    }

    /** The codec byte of a COMPRESSED_PAGES frame; 0 is never sent. */
    public int code() {
        return code;
    }

    /** The codec named {@code label} ({@code none}, {@code lz4}, {@code zstd}). */
    public static PageCodec of(String label) {
        for (PageCodec codec : values()) {
            if (codec.label.equals(label)) {
                return codec;
            }
        }
        throw new IllegalArgumentException("compression must be none, lz4 or zstd, not '" + label + "'");
    }

    /** The codec a frame names, or null for a byte that names none (0 included: such a frame is not compressed). */
    public static PageCodec ofCode(int code) {
        for (PageCodec codec : values()) {
            if (codec.code == code && codec != NONE) {
                return codec;
            }
        }
        return null;
    }

    /**
     * Loads what the codec needs (its native library) now, so that a daemon that cannot compress says so
     * when a migration asks, not in the middle of it.
     *
     * @throws IllegalStateException naming the codec and why it cannot run here
     */
    public void check() {
        if (checked || this == NONE) {
            return;
        }
        try (Compressor compressor = compressor(); Decompressor decompressor = decompressor()) {
            ByteBuffer page = ByteBuffer.allocateDirect(4096);
            ByteBuffer packed = ByteBuffer.allocateDirect(compressor.bound(4096));
            int n = compressor.compress(page, 0, 4096, packed);
            decompressor.decompress(packed, 0, n, ByteBuffer.allocateDirect(4096), 4096);
            checked = true;
        } catch (LinkageError | RuntimeException | ProtocolException e) {
            throw new IllegalStateException(label + " compression does not work on this daemon: " + e, e);
        }
    }

    /** A compressor for one thread; close it when done. */
    public Compressor compressor() {
        return switch (this) {
            case NONE -> throw new IllegalStateException("nothing to compress with: compression is none");
            case LZ4 -> new Lz4Compressor();
            case ZSTD -> new ZstdCompressor();
        };
    }

    /** A decompressor for one thread; close it when done. */
    public Decompressor decompressor() {
        return switch (this) {
            case NONE -> throw new IllegalStateException("nothing to decompress with: compression is none");
            case LZ4 -> new Lz4Decompressor();
            case ZSTD -> new ZstdDecompressor();
        };
    }

    @Override
    public String toString() {
        return label.toUpperCase(Locale.ROOT);
    }

    /** Compresses blocks of direct memory; one thread at a time. */
    public interface Compressor extends AutoCloseable {
        /** The most {@code length} bytes can take compressed. */
        int bound(int length);

        /**
         * Compresses {@code length} bytes of {@code src} from {@code offset} into {@code dst} from its position,
         * which must have {@link #bound} bytes of room; returns the compressed size (the position is unchanged).
         */
        int compress(ByteBuffer src, int offset, int length, ByteBuffer dst);

        @Override
        void close();
    }

    /** Decompresses blocks into direct memory; one thread at a time. */
    public interface Decompressor extends AutoCloseable {
        /**
         * Decompresses {@code length} bytes of {@code src} from {@code offset} into {@code dst} from its
         * position; they must come to exactly {@code expected} bytes.
         *
         * @throws ProtocolException {@code malformed}: the block is not valid, or decompresses to another size
         */
        void decompress(ByteBuffer src, int offset, int length, ByteBuffer dst, int expected) throws ProtocolException;

        @Override
        void close();
    }

    private static ProtocolException malformed(PageCodec codec, int expected, String why) {
        return new ProtocolException(ErrorCode.MALFORMED, "COMPRESSED_PAGES frame: the " + codec.label
                + " block does not decompress to its " + expected + " page bytes: " + why);
    }

    private static final class Lz4Compressor implements Compressor {
        /** Thread-safe and stateless: one for everyone. */
        private static final LZ4Compressor LZ4 = LZ4Factory.fastestInstance().fastCompressor();

        @Override
        public int bound(int length) {
            return LZ4.maxCompressedLength(length);
        }

        @Override
        public int compress(ByteBuffer src, int offset, int length, ByteBuffer dst) {
            return LZ4.compress(src, offset, length, dst, dst.position(), dst.remaining());
        }

        @Override
        public void close() {
        }
    }

    private static final class Lz4Decompressor implements Decompressor {
        /** The safe decompressor: a peer's block is untrusted input. */
        private static final LZ4SafeDecompressor LZ4 = LZ4Factory.fastestInstance().safeDecompressor();

        @Override
        public void decompress(ByteBuffer src, int offset, int length, ByteBuffer dst, int expected) throws ProtocolException {
            int n;
            try {
                n = LZ4.decompress(src, offset, length, dst, dst.position(), expected);
            } catch (LZ4Exception | IndexOutOfBoundsException e) {
                throw malformed(PageCodec.LZ4, expected, e.getMessage());
            }
            if (n != expected) {
                throw malformed(PageCodec.LZ4, expected, "it holds " + n);
            }
        }

        @Override
        public void close() {
        }
    }

    private static final class ZstdCompressor implements Compressor {
        private final ZstdCompressCtx context = new ZstdCompressCtx().setLevel(ZSTD_LEVEL);

        @Override
        public int bound(int length) {
            return (int) com.github.luben.zstd.Zstd.compressBound(length);
        }

        @Override
        public int compress(ByteBuffer src, int offset, int length, ByteBuffer dst) {
            return context.compressDirectByteBuffer(dst, dst.position(), dst.remaining(), src, offset, length);
        }

        @Override
        public void close() {
            context.close();
        }
    }

    private static final class ZstdDecompressor implements Decompressor {
        private final ZstdDecompressCtx context = new ZstdDecompressCtx();

        @Override
        public void decompress(ByteBuffer src, int offset, int length, ByteBuffer dst, int expected) throws ProtocolException {
            int n;
            try {
                n = context.decompressDirectByteBuffer(dst, dst.position(), expected, src, offset, length);
            } catch (ZstdException e) {
                throw malformed(PageCodec.ZSTD, expected, e.getMessage());
            }
            if (n != expected) {
                throw malformed(PageCodec.ZSTD, expected, "it holds " + n);
            }
        }

        @Override
        public void close() {
            context.close();
        }
    }
}
