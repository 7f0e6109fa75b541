package dev.ferry.device.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Freed guest memory kept for the next VM: always handed out zeroed, never more than the capacity. */
class ChunkPoolTest {
    private static final int CHUNK = 256 << 10;

    private static void scribble(ByteBuffer chunk, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i + 8 <= chunk.capacity(); i += 8) {
            chunk.putLong(i, random.nextLong() | 1);
        }
    }

    private static boolean allZero(ByteBuffer chunk) {
        for (int i = 0; i + 8 <= chunk.capacity(); i += 8) {
            if (chunk.getLong(i) != 0) {
                return false;
            }
        }
        return true;
    }

    @Test
    void aChunkGivenBackIsHandedOutAgainZeroed() {
        try (ChunkPool pool = new ChunkPool(4L * CHUNK, CHUNK)) {
            ByteBuffer chunk = pool.take(CHUNK);
            assertThat(allZero(chunk)).as("a new chunk").isTrue();
            scribble(chunk, 1);
            pool.give(chunk);
            assertThat(pool.keptBytes()).isEqualTo(CHUNK);

            ByteBuffer again = pool.take(CHUNK);
            assertThat(again).as("the same memory, not a new allocation").isSameAs(chunk);
            assertThat(allZero(again)).as("zeroed, whether the scrubber got to it or take() did").isTrue();
            assertThat(pool.keptBytes()).isZero();
            assertThat(pool.reusedChunks()).isEqualTo(1);
        }
    }

    @Test
    void keepsNoMoreThanItsCapacityAndOnlyChunksOfItsSize() {
        try (ChunkPool pool = new ChunkPool(2L * CHUNK, CHUNK)) {
            for (int i = 0; i < 3; i++) {
                pool.give(ByteBuffer.allocateDirect(CHUNK));
            }
            pool.give(ByteBuffer.allocateDirect(CHUNK / 2));
            assertThat(pool.keptBytes()).isEqualTo(2L * CHUNK);
            assertThat(pool.take(CHUNK / 2).capacity()).as("other sizes are allocated").isEqualTo(CHUNK / 2);
            assertThat(pool.reusedChunks()).isZero();
        }
    }

    @Test
    void closingFreesWhatIsKeptAndKeepsNothingAfterwards() {
        ChunkPool pool = new ChunkPool(4L * CHUNK, CHUNK);
        pool.give(ByteBuffer.allocateDirect(CHUNK));
        pool.give(ByteBuffer.allocateDirect(CHUNK));
        pool.close();
        assertThat(pool.keptBytes()).isZero();
        pool.give(ByteBuffer.allocateDirect(CHUNK));
        assertThat(pool.keptBytes()).isZero();
        assertThat(allZero(pool.take(CHUNK))).isTrue();
    }

    @Test
    void aPrefillKeepsNewChunksUpToItsBytesAndTheCapacityAndTakeHandsThemOut() throws Exception {
        try (ChunkPool pool = new ChunkPool(4L * CHUNK, CHUNK)) {
            assertThat(pool.prefill(3L * CHUNK + CHUNK / 2, () -> Long.MAX_VALUE).get(30, TimeUnit.SECONDS))
                    .as("whole chunks only").isEqualTo(3L * CHUNK);
            assertThat(pool.keptBytes()).isEqualTo(3L * CHUNK);
            assertThatThrownBy(() -> pool.prefill(CHUNK, () -> Long.MAX_VALUE))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("once");

            ByteBuffer chunk = pool.take(CHUNK);
            assertThat(allZero(chunk)).isTrue();
            assertThat(pool.reusedChunks()).as("a prefilled chunk, not a new allocation").isEqualTo(1);
            assertThat(pool.keptBytes()).isEqualTo(2L * CHUNK);
        }
        try (ChunkPool pool = new ChunkPool(2L * CHUNK, CHUNK)) {
            pool.give(ByteBuffer.allocateDirect(CHUNK));
            assertThat(pool.prefill(Long.MAX_VALUE, () -> Long.MAX_VALUE).get(30, TimeUnit.SECONDS))
                    .as("up to the capacity").isEqualTo(CHUNK);
            assertThat(pool.keptBytes()).isEqualTo(2L * CHUNK);
        }
    }

    @Test
    void aPrefillBacksTheMemoryItKeepsAndClosingTheGuestChunksPoolGivesItBack() throws Exception {
        Assumptions.assumeTrue(Files.isReadable(Path.of("/proc/self/status")), "resident memory is read from /proc");
        int chunk = PageStore.DEFAULT_CHUNK_BYTES;
        long bytes = 32L * chunk;
        long before = residentBytes();
        ChunkPool pool = new ChunkPool(bytes, chunk);
        try {
            assertThat(pool.prefill(bytes, () -> Long.MAX_VALUE).get(30, TimeUnit.SECONDS)).isEqualTo(bytes);
            // New guest chunks are mappings nothing has touched (where they are mapped): kept for a VM, they
            // are of use only once backed, so the prefill touches every page of them.
            assertThat(residentBytes() - before).as("resident growth, of %d bytes prefilled", bytes).isGreaterThanOrEqualTo(bytes * 7 / 8);
        } finally {
            pool.close();
        }
        long after = residentBytes();
        assertThat(after - before).as("resident growth once the pool is closed").isLessThan(bytes / 4);
    }

    private static long residentBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        }
        throw new AssertionError("no VmRSS in /proc/self/status");
    }

    @Test
    void aPrefillTakesNoMoreThanTheRoomItIsGivenWhichVmsMayTakeMeanwhile() throws Exception {
        try (ChunkPool pool = new ChunkPool(8L * CHUNK, CHUNK)) {
            // A budget of 6 chunks of which VMs hold 3: the prefill stops at the other 3.
            long budget = 6L * CHUNK;
            long held = 3L * CHUNK;
            assertThat(pool.prefill(Long.MAX_VALUE, () -> budget - held - pool.keptBytes()).get(30, TimeUnit.SECONDS))
                    .isEqualTo(3L * CHUNK);
            assertThat(pool.keptBytes()).isEqualTo(3L * CHUNK);
        }
    }

    @Test
    void aClosedPoolIsNotPrefilledAndClosingEndsAPrefill() throws Exception {
        ChunkPool closed = new ChunkPool(4L * CHUNK, CHUNK);
        closed.close();
        assertThatThrownBy(() -> closed.prefill(CHUNK, () -> Long.MAX_VALUE)).isInstanceOf(IllegalStateException.class);

        ChunkPool pool = new ChunkPool(1L << 40, CHUNK);
        CompletableFuture<Long> prefill = pool.prefill(1L << 40, () -> Long.MAX_VALUE);
        pool.close();
        assertThat(prefill.get(30, TimeUnit.SECONDS)).as("it stopped, whatever it had reached").isLessThan(1L << 40);
        assertThat(pool.keptBytes()).as("and close freed all it kept").isZero();
    }

    @Test
    void aPrefillThatFailsSaysWhyAndKeepsWhatItHad() throws Exception {
        try (ChunkPool pool = new ChunkPool(8L * CHUNK, CHUNK)) {
            int[] asked = new int[1];
            CompletableFuture<Long> prefill = pool.prefill(Long.MAX_VALUE, () -> {
                if (++asked[0] > 2) {
                    throw new IllegalStateException("the budget could not be read");
                }
                return Long.MAX_VALUE;
            });
            assertThatThrownBy(() -> prefill.get(30, TimeUnit.SECONDS)).hasRootCauseMessage("the budget could not be read");
            assertThat(pool.keptBytes()).as("the two chunks filled before it failed").isEqualTo(2L * CHUNK);
        }
    }

    @Test
    void nonePoolsNothing() {
        ChunkPool.NONE.give(ByteBuffer.allocateDirect(ChunkPool.NONE.chunkBytes()));
        assertThat(ChunkPool.NONE.keptBytes()).isZero();
    }

    @Test
    void aReleasedStoresMemoryBacksTheNextStoreWhichReadsAsZeros() {
        try (ChunkPool pool = new ChunkPool(8L * CHUNK, CHUNK)) {
            GuestMemory first = new GuestMemory(8L * CHUNK, pool);
            byte[] data = new byte[4096];
            new SplittableRandom(7).nextBytes(data);
            for (long address = 0; address < first.sizeBytes(); address += CHUNK) {
                first.vcpuWrite(address + 4096, data, 0, data.length);
            }
            assertThat(first.backedChunks().cardinality()).isEqualTo(8);
            first.release();
            assertThat(pool.keptBytes()).isEqualTo(8L * CHUNK);

            GuestMemory second = new GuestMemory(8L * CHUNK, pool);
            for (long address = 0; address < second.sizeBytes(); address += CHUNK) {
                second.vcpuWrite(address, new byte[] {1}, 0, 1);
                assertThat(second.store().isZeroPage(address / 4096 + 1)).as("page after %d", address).isTrue();
            }
            assertThat(pool.reusedChunks()).isEqualTo(8);
            assertThat(pool.keptBytes()).isZero();
            second.release();
        }
    }

    @Test
    void aChunkForOverwriteIsHandedOutAsItIsAndOnlyWhereNothingIsAllocated() {
        try (ChunkPool pool = new ChunkPool(4L * CHUNK, CHUNK)) {
            ByteBuffer used = pool.take(CHUNK);
            scribble(used, 3);
            pool.give(used);
            PageStore store = new PageStore(2L * CHUNK, CHUNK, pool);
            assertThat(store.allocateChunkForOverwrite(0)).isTrue();
            assertThat(store.allocateChunkForOverwrite(0)).as("allocated already").isFalse();
            assertThat(store.allocateChunkForOverwrite(1)).as("the pool keeps nothing more").isFalse();
            assertThat(store.chunkBacked(0)).isTrue();
            assertThat(pool.reusedChunks()).isEqualTo(1);
            // Whatever the chunk held, every page written is what reads back.
            byte[] page = new byte[4096];
            new SplittableRandom(4).nextBytes(page);
            for (long p = 0; p < CHUNK / 4096; p++) {
                if (p % 2 == 0) {
                    store.writePage(p, ByteBuffer.wrap(page));
                } else {
                    store.zeroPage(p);
                }
            }
            for (long p = 0; p < CHUNK / 4096; p++) {
                assertThat(store.isZeroPage(p)).isEqualTo(p % 2 == 1);
            }
            assertThat(store.chunkBacked(1)).as("the other chunk is untouched").isFalse();
            store.release();
        }
    }
}
