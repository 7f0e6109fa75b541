package dev.ferry.device.memory;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.BitSet;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The bitmap's range operations against a plain {@link BitSet}, over seeded random ranges and marks. */
class DirtyBitmapTest {
    private static final long SEED = 0x5EED_0B17L;

    @Test
    void clearRangeClearsExactlyItsRange() {
        SplittableRandom random = new SplittableRandom(SEED);
        int pages = 1000;
        for (int round = 0; round < 200; round++) {
            DirtyBitmap bitmap = new DirtyBitmap(pages);
            bitmap.start();
            BitSet expected = new BitSet(pages);
            for (int i = 0; i < 300; i++) {
                int page = random.nextInt(pages);
                bitmap.mark(page);
                expected.set(page);
            }
            int first = random.nextInt(pages);
            int count = random.nextInt(pages - first + 1);
            bitmap.clearRange(first, count);
            expected.clear(first, first + count);
            BitSet actual = new BitSet(pages);
            for (long page = bitmap.nextDirty(0); page >= 0; page = bitmap.nextDirty(page + 1)) {
                actual.set((int) page);
            }
            assertThat(actual).as("round %d: clear [%d, +%d)", round, first, count).isEqualTo(expected);
        }
    }
}
