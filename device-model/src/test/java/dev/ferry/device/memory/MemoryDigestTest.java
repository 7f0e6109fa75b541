package dev.ferry.device.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.zip.CRC32;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

/**
 * {@link MemoryDigest}: every write path of {@link PageStore} marks its change units, a refresh hashes
 * again only what changed, and the value always equals a computation from scratch; any one-byte change
 * changes it.
 */
class MemoryDigestTest {
    private static final long SEED = 5150L;

    /** The value computed from scratch, reading the store through its public reads only. */
    private static long reference(PageStore store) {
        int unitBytes = store.changeUnitBytes();
        byte[] unit = new byte[unitBytes];
        long sum = 0;
        for (long u = 0; u < store.changeUnits(); u++) {
            long start = u * unitBytes;
            int length = (int) Math.min(unitBytes, store.sizeBytes() - start);
            store.read(start, unit, 0, length);
            CRC32C castagnoli = new CRC32C();
            CRC32 ieee = new CRC32();
            castagnoli.update(unit, 0, length);
            ieee.update(unit, 0, length);
            long hash = castagnoli.getValue() << 32 | ieee.getValue();
            sum += MemoryDigest.mix(u, hash == Long.MIN_VALUE ? Long.MAX_VALUE : hash);
        }
        return sum;
    }

    @Test
    void theChangeUnitDependsOnTheSizeOnlyAndBoundsTheUnitCount() {
        assertThat(new PageStore(1L << 20, 64 * 1024).changeUnitBytes()).isEqualTo(4096);
        assertThat(new PageStore(1L << 30, 2 << 20).changeUnitBytes()).isEqualTo(4096);
        assertThat(new PageStore(1L << 30, 64 * 1024).changeUnitBytes()).isEqualTo(4096);
        assertThat(new PageStore(16L << 30, 2 << 20).changeUnitBytes()).isEqualTo(16 * 1024);
        assertThat(new PageStore(64L << 30).changeUnits()).isLessThanOrEqualTo(PageStore.MAX_CHANGE_UNITS);
        assertThat(new PageStore((1L << 32) + 4096).changeUnits()).isEqualTo(PageStore.MAX_CHANGE_UNITS / 2 + 1);
    }

    @Test
    void everyWritePathIsSeenAndTheValueEqualsAComputationFromScratch() {
        // Units of 4 KiB over chunks of 64 KiB, and a store of 128 KiB with a pool that keeps what it is given.
        try (ChunkPool pool = new ChunkPool(1 << 20, 64 * 1024)) {
            PageStore store = new PageStore(20 * 64 * 1024, 64 * 1024, pool);
            SplittableRandom random = new SplittableRandom(SEED);
            try (MemoryDigest digest = MemoryDigest.open(store)) {
                digest.refresh();
                assertThat(digest.value()).isEqualTo(reference(store));
                ByteBuffer page = ByteBuffer.allocateDirect(PageGeometry.PAGE_SIZE);
                for (int round = 0; round < 400; round++) {
                    long address = random.nextLong(store.sizeBytes() - 64);
                    switch (random.nextInt(7)) {
                        case 0 -> {
                            byte[] bytes = new byte[1 + random.nextInt(63)];
                            random.nextBytes(bytes);
                            store.write(address, bytes, 0, bytes.length);
                        }
                        case 1 -> store.writeLong(address & ~7L, random.nextLong());
                        case 2 -> {
                            byte[] bytes = new byte[PageGeometry.PAGE_SIZE];
                            random.nextBytes(bytes);
                            page.clear();
                            page.put(bytes).flip();
                            store.writePage(random.nextLong(store.pages()), page);
                        }
                        case 3 -> store.zeroPage(random.nextLong(store.pages()));
                        case 4 -> {
                            if (random.nextInt(20) == 0) {
                                store.clear();
                            }
                        }
                        case 5 -> {
                            // A kept chunk handed out as it is: whatever it holds is the store's content now.
                            pool.give(filled(64 * 1024, random));
                            store.allocateChunkForOverwrite(random.nextInt(store.chunks()));
                        }
                        default -> {
                            // A big write across units and chunks.
                            byte[] bytes = new byte[3 * 64 * 1024 / 2];
                            random.nextBytes(bytes);
                            long at = random.nextLong(store.sizeBytes() - bytes.length);
                            store.write(at, bytes, 0, bytes.length);
                        }
                    }
                    if (random.nextInt(5) == 0) {
                        digest.refresh();
                        assertThat(digest.value()).as("round %d", round).isEqualTo(reference(store));
                    }
                }
                digest.refresh();
                assertThat(digest.value()).isEqualTo(reference(store));
                try (MemoryDigest fresh = MemoryDigest.open(store)) {
                    fresh.refresh();
                    assertThat(fresh.value()).isEqualTo(digest.value());
                }
            }
            store.release();
        }
    }

    private static ByteBuffer filled(int bytes, SplittableRandom random) {
        ByteBuffer buffer = DirectMemory.allocate(bytes);
        byte[] content = new byte[bytes];
        random.nextBytes(content);
        buffer.put(content).clear();
        return buffer;
    }

    @Test
    void aRefreshHashesOnlyTheUnitsChangedSinceTheLast() {
        PageStore store = new PageStore(1L << 30);
        try (MemoryDigest digest = MemoryDigest.open(store)) {
            byte[] bytes = {1, 2, 3};
            store.write(0, bytes, 0, 3);
            store.write(5L << 20, bytes, 0, 3);
            MemoryDigest.Work first = digest.refresh();
            assertThat(first.units()).as("the allocated units of two 2 MiB chunks; the rest is known to be zero")
                    .isEqualTo(2 * (2 << 20) / store.changeUnitBytes());
            assertThat(digest.refresh()).isEqualTo(MemoryDigest.Work.NONE);
            store.write(100, bytes, 0, 3);
            store.write(200, bytes, 0, 3);
            store.write(store.changeUnitBytes() - 1, bytes, 0, 3);
            MemoryDigest.Work work = digest.refresh();
            assertThat(work.units()).isEqualTo(2);
            assertThat(work.bytes()).isEqualTo(2L * store.changeUnitBytes());
        } finally {
            store.release();
        }
    }

    @Test
    void anyOneByteChangeChangesTheValue() {
        PageStore store = new PageStore(64 * 1024, 16 * 1024);
        SplittableRandom random = new SplittableRandom(SEED);
        byte[] content = new byte[(int) store.sizeBytes() / 2];
        random.nextBytes(content);
        store.write(0, content, 0, content.length);
        try (MemoryDigest digest = MemoryDigest.open(store)) {
            digest.refresh();
            long original = digest.value();
            List<Long> unchanged = new ArrayList<>();
            byte[] one = new byte[1];
            for (long address = 0; address < store.sizeBytes(); address++) {
                store.read(address, one, 0, 1);
                byte before = one[0];
                one[0] = (byte) (before ^ (1 + random.nextInt(255)));
                store.write(address, one, 0, 1);
                digest.refresh();
                if (digest.value() == original) {
                    unchanged.add(address);
                }
                one[0] = before;
                store.write(address, one, 0, 1);
            }
            digest.refresh();
            assertThat(digest.value()).isEqualTo(original);
            assertThat(unchanged).as("addresses whose change the digest missed").isEmpty();
        } finally {
            store.release();
        }
    }

    @Test
    void contentAloneDecidesNotWhatWasAllocated() {
        PageStore written = new PageStore(4L << 20);
        PageStore untouched = new PageStore(4L << 20);
        written.write(3 << 20, new byte[4096], 0, 4096);
        try (MemoryDigest a = MemoryDigest.open(written); MemoryDigest b = MemoryDigest.open(untouched)) {
            a.refresh();
            b.refresh();
            assertThat(written.chunkBacked(1)).isTrue();
            assertThat(a.value()).isEqualTo(b.value());
        } finally {
            written.release();
            untouched.release();
        }
    }

    @Test
    void aReleasedStoreIsNeverRead() {
        PageStore store = new PageStore(1L << 20);
        MemoryDigest digest = MemoryDigest.open(store);
        store.write(0, new byte[] {1}, 0, 1);
        store.release();
        assertThatThrownBy(digest::refresh).isInstanceOf(IllegalStateException.class).hasMessageContaining("released");
        digest.close();
        assertThatThrownBy(digest::refresh).isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
    }
}
