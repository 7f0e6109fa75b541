package dev.ferry.device.bench;

import dev.ferry.device.memory.DirtyBitmap;
import dev.ferry.device.memory.GuestMemory;
import dev.ferry.device.memory.PageStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.ToLongFunction;
import java.util.zip.Adler32;
import java.util.zip.CRC32;
import java.util.zip.CRC32C;

/**
 * How fast the JDK's hashes and checksums go over guest memory as the incremental verify digest reads it:
 * one unit (4 KiB to 64 KiB) of a direct buffer at a time. The figures chose the digest's unit hash
 * (README, "Verify at the cost of what changed").
 *
 * <pre>mvn -q -pl device-model -am compile exec:java@hashes [-Dexec.args="MiB rounds"]</pre>
 */
public final class HashBenchmark {
    private HashBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int mib = args.length > 0 ? Integer.parseInt(args[0]) : 64;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 7;
        ByteBuffer memory = ByteBuffer.allocateDirect(mib << 20);
        SplittableRandom random = new SplittableRandom(1);
        byte[] block = new byte[1 << 20];
        while (memory.hasRemaining()) {
            random.nextBytes(block);
            memory.put(block, 0, Math.min(block.length, memory.remaining()));
        }
        memory.clear();

        Map<String, ToLongFunction<ByteBuffer>> hashes = new LinkedHashMap<>();
        MessageDigest sha256 = digest("SHA-256");
        MessageDigest sha1 = digest("SHA-1");
        MessageDigest md5 = digest("MD5");
        hashes.put("SHA-256", unit -> first8(sha256, unit));
        hashes.put("SHA-1", unit -> first8(sha1, unit));
        hashes.put("MD5", unit -> first8(md5, unit));
        CRC32C crc32c = new CRC32C();
        CRC32 crc32 = new CRC32();
        Adler32 adler = new Adler32();
        hashes.put("CRC32C", unit -> {
            crc32c.reset();
            crc32c.update(unit);
            return crc32c.getValue();
        });
        hashes.put("CRC32", unit -> {
            crc32.reset();
            crc32.update(unit);
            return crc32.getValue();
        });
        hashes.put("Adler32", unit -> {
            adler.reset();
            adler.update(unit);
            return adler.getValue();
        });
        hashes.put("CRC32C+CRC32 (64-bit)", unit -> {
            crc32c.reset();
            crc32c.update(unit.duplicate());
            crc32.reset();
            crc32.update(unit);
            return crc32c.getValue() << 32 | crc32.getValue();
        });
        hashes.put("multiply-xorshift, 4 lanes (Java)", HashBenchmark::lanes);

        System.out.printf(Locale.ROOT, "%d MiB of random bytes in a direct buffer, best of %d rounds, GB/s (10^9 bytes/s)%n", mib, rounds);
        int[] units = {4096, 16384, 65536};
        System.out.printf(Locale.ROOT, "%-36s", "unit bytes");
        for (int unit : units) {
            System.out.printf(Locale.ROOT, "%10d", unit);
        }
        System.out.println();
        for (Map.Entry<String, ToLongFunction<ByteBuffer>> hash : hashes.entrySet()) {
            System.out.printf(Locale.ROOT, "%-36s", hash.getKey());
            for (int unit : units) {
                System.out.printf(Locale.ROOT, "%10.2f", best(memory, unit, rounds, hash.getValue()));
            }
            System.out.println();
        }
        writePath(rounds);
    }

    /**
     * The write path's cost of change tracking: a vCPU's 64-byte writes at random pages of 1 GiB, with no log,
     * with the vCPU dirty log on (as during any migration), and with the dirty log and a change log (as during a
     * migration that verifies).
     */
    private static void writePath(int rounds) {
        GuestMemory memory = new GuestMemory(1L << 30);
        PageStore store = memory.store();
        byte[] bytes = new byte[64];
        for (long chunk = 0; chunk < store.chunks(); chunk++) {
            store.write(chunk * store.chunkBytes(), bytes, 0, 1);
        }
        int writes = 4_000_000;
        long[] addresses = new long[writes];
        SplittableRandom random = new SplittableRandom(2);
        for (int i = 0; i < writes; i++) {
            addresses[i] = random.nextLong(store.pages()) * 4096 + random.nextInt(64) * 64;
        }
        String[] names = {"no log", "dirty log", "dirty log + change log"};
        double[] best = {Double.MAX_VALUE, Double.MAX_VALUE, Double.MAX_VALUE};
        for (int round = 0; round < 3 * (rounds + 2); round++) {
            int variant = round % 3;
            DirtyBitmap changes = null;
            if (variant >= 1) {
                memory.vcpuLog().start();
            }
            if (variant == 2) {
                changes = store.openChangeLog();
            }
            long start = System.nanoTime();
            for (long address : addresses) {
                memory.vcpuWrite(address, bytes, 0, 64);
            }
            double perWrite = (System.nanoTime() - start) / (double) writes;
            memory.vcpuLog().stop();
            if (changes != null) {
                store.closeChangeLog(changes);
            }
            if (round >= 6) {
                best[variant] = Math.min(best[variant], perWrite);
            }
        }
        memory.release();
        System.out.printf(Locale.ROOT, "a vCPU's 64-byte writes at random pages of 1 GiB, ns per write, best of %d:", rounds);
        for (int i = 0; i < names.length; i++) {
            System.out.printf(Locale.ROOT, " %s %.1f%s", names[i], best[i], i < names.length - 1 ? "," : "");
        }
        System.out.println();
    }

    private static double best(ByteBuffer memory, int unit, int rounds, ToLongFunction<ByteBuffer> hash) {
        List<Double> rates = new ArrayList<>();
        long sink = 0;
        // Two rounds more than measured: the first ones compile the loop.
        for (int round = 0; round < rounds + 2; round++) {
            long start = System.nanoTime();
            for (int offset = 0; offset + unit <= memory.capacity(); offset += unit) {
                sink += hash.applyAsLong(memory.slice(offset, unit));
            }
            long nanos = System.nanoTime() - start;
            if (round >= 2) {
                rates.add(memory.capacity() / (double) nanos);
            }
        }
        if (sink == 42) {
            System.out.print("");
        }
        return rates.stream().mapToDouble(Double::doubleValue).max().orElse(0);
    }

    private static long first8(MessageDigest digest, ByteBuffer unit) {
        digest.update(unit);
        return ByteBuffer.wrap(digest.digest()).getLong();
    }

    /** A 64-bit multiply-xorshift hash over four independent lanes of longs, as fast hashes do in C. */
    private static long lanes(ByteBuffer unit) {
        ByteBuffer longs = unit.order(ByteOrder.LITTLE_ENDIAN);
        long a = 0x9E3779B97F4A7C15L;
        long b = 0xC2B2AE3D27D4EB4FL;
        long c = 0x165667B19E3779F9L;
        long d = 0x27D4EB2F165667C5L;
        int end = unit.limit();
        for (int i = 0; i + 32 <= end; i += 32) {
            a = Long.rotateLeft(a + longs.getLong(i) * 0xC2B2AE3D27D4EB4FL, 31) * 0x9E3779B97F4A7C15L;
            b = Long.rotateLeft(b + longs.getLong(i + 8) * 0xC2B2AE3D27D4EB4FL, 31) * 0x9E3779B97F4A7C15L;
            c = Long.rotateLeft(c + longs.getLong(i + 16) * 0xC2B2AE3D27D4EB4FL, 31) * 0x9E3779B97F4A7C15L;
            d = Long.rotateLeft(d + longs.getLong(i + 24) * 0xC2B2AE3D27D4EB4FL, 31) * 0x9E3779B97F4A7C15L;
        }
        long h = Long.rotateLeft(a, 1) + Long.rotateLeft(b, 7) + Long.rotateLeft(c, 12) + Long.rotateLeft(d, 18);
        h ^= h >>> 33;
        h *= 0xFF51AFD7ED558CCDL;
        return h ^ h >>> 33;
    }

    private static MessageDigest digest(String name) throws NoSuchAlgorithmException {
        return MessageDigest.getInstance(name);
    }
}
