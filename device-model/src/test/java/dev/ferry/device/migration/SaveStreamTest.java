package dev.ferry.device.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.memory.DirtyBitmap;
import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.memory.PageStore;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The save stream copies a page from device memory straight into the reader's buffer, and sums it as it
 * lands there: a page the device's own work changes between its record header and its bytes, or in the
 * middle of its bytes, is streamed as it is read, checks out on load (D8), and is sent again because the
 * write marked the log (W4); the load ends equal to the device (W2, W5).
 */
class SaveStreamTest {
    private static final int PAGES = 64;

    /** A device image of nothing but memory and a few registers. */
    private static final class Image implements DeviceImage {
        final PageStore memory = new PageStore((long) PAGES * PageGeometry.PAGE_SIZE, 16 * PageGeometry.PAGE_SIZE);
        final DirtyBitmap log = new DirtyBitmap(PAGES);
        byte[] state = {1, 2, 3};

        @Override
        public String kind() {
            return "test";
        }

        @Override
        public int formatVersion() {
            return 1;
        }

        @Override
        public byte[] configBytes() {
            return "c".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        }

        @Override
        public PageStore memory() {
            return memory;
        }

        @Override
        public DirtyBitmap memoryLog() {
            return log;
        }

        @Override
        public byte[] captureState() {
            return state.clone();
        }

        @Override
        public void loadState(byte[] loaded) {
            state = loaded.clone();
        }

        /** The device's own work: writes, then marks the log, as the engine does. */
        void write(long page, SplittableRandom random) {
            byte[] bytes = new byte[64];
            random.nextBytes(bytes);
            long address = page * PageGeometry.PAGE_SIZE + random.nextInt(PageGeometry.PAGE_SIZE / 64) * 64L;
            memory.write(address, bytes, 0, bytes.length);
            log.mark(page);
        }

        byte[] contents() {
            byte[] all = new byte[PAGES * PageGeometry.PAGE_SIZE];
            memory.read(0, all, 0, all.length);
            return all;
        }
    }

    @Test
    void w4PagesChangedWhileTheyAreReadLoadCleanAndAreSentAgain() {
        for (long seed = 1; seed <= 20; seed++) {
            SplittableRandom random = new SplittableRandom(seed);
            Image source = new Image();
            for (int page = 0; page < PAGES; page += 2) {
                source.write(page, random);
            }
            Image target = new Image();
            SaveStream save = new SaveStream(source, true);
            LoadStream load = new LoadStream(target);
            save.startPreCopy();
            // Pre-copy in reads of seeded sizes, some ending inside a record header and some inside a page,
            // with the device writing its memory between reads: pages already sent and the one being read.
            ByteBuffer chunk = ByteBuffer.allocateDirect(3 * PageGeometry.PAGE_SIZE);
            int writes = 0;
            for (int round = 0; round < 400 && (save.pendingBytes() > 0 || round < 50); round++) {
                chunk.clear().limit(1 + random.nextInt(chunk.capacity()));
                int n = save.read(chunk);
                assertThat(load.write(chunk.flip())).as("seed %d", seed).isNull();
                if (n > 0 || random.nextBoolean()) {
                    source.write(random.nextInt(PAGES), random);
                    writes++;
                }
            }
            assertThat(writes).isPositive();
            save.enterStopCopy();
            while (!save.finished()) {
                chunk.clear().limit(1 + random.nextInt(chunk.capacity()));
                save.read(chunk);
                assertThat(load.write(chunk.flip())).as("seed %d", seed).isNull();
            }
            assertThat(load.finish()).as("seed %d", seed).isNull();
            assertThat(Arrays.equals(target.contents(), source.contents())).as("seed %d: memory equal", seed).isTrue();
            assertThat(target.state).containsExactly(source.state);
        }
    }

    @Test
    void d8ABitFlippedInAPageOnTheWayIsCaught() {
        Image source = new Image();
        SplittableRandom random = new SplittableRandom(7);
        for (int page = 0; page < PAGES; page++) {
            source.write(page, random);
        }
        SaveStream save = new SaveStream(source, false);
        save.enterStopCopy();
        ByteBuffer all = ByteBuffer.allocate((int) save.pendingBytes());
        save.read(all);
        assertThat(save.finished()).isTrue();
        all.flip();
        // Inside page 3's bytes: past the header record and three page records and page 3's own header.
        int at = all.limit() / 2;
        all.put(at, (byte) (all.get(at) ^ 0x10));
        LoadStream load = new LoadStream(new Image());
        assertThat(load.write(all)).startsWith("checksum mismatch");
        assertThat(load.finish()).startsWith("checksum mismatch");
    }
}
