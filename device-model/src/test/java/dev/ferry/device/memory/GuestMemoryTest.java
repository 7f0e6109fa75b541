package dev.ferry.device.memory;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.util.BitSet;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/** M1: 4 KiB pages, two dirty logs with atomic read-and-clear; zero pages; memory beyond 2 GiB. */
class GuestMemoryTest {

    @Test
    void m1EachLogSeesOnlyItsOwnWritesAndOnlyWhileLogging() {
        GuestMemory memory = new GuestMemory(1L << 20);
        byte[] data = {1, 2, 3};
        memory.vcpuWrite(4096 * 3 + 10, data, 0, 3);
        assertThat(memory.vcpuLog().count()).as("not logging yet").isZero();

        memory.vcpuLog().start();
        memory.dmaLog().start();
        memory.vcpuWrite(4096 * 3 + 4094, data, 0, 3);
        memory.dmaWrite(4096 * 7, data, 0, 3);
        DirtyBitmap.Snapshot vcpu = memory.vcpuLog().readAndClear();
        DirtyBitmap.Snapshot dma = memory.dmaLog().readAndClear();
        assertThat(vcpu.count()).as("a write across a page boundary dirties both").isEqualTo(2);
        assertThat(vcpu.contains(3)).isTrue();
        assertThat(vcpu.contains(4)).isTrue();
        assertThat(dma.count()).isEqualTo(1);
        assertThat(dma.contains(7)).isTrue();
        assertThat(memory.vcpuLog().count()).as("read-and-clear cleared").isZero();
        assertThat(vcpu.union(dma).count()).isEqualTo(3);
    }

    @Test
    void m1ReadAndClearUnderConcurrentWritersLosesNoPage() throws Exception {
        int pages = 64 * 1024;
        DirtyBitmap log = new DirtyBitmap(pages);
        log.start();
        int writers = 2;
        BitSet[] written = new BitSet[writers];
        CountDownLatch done = new CountDownLatch(writers);
        AtomicBoolean go = new AtomicBoolean();
        for (int w = 0; w < writers; w++) {
            int index = w;
            written[w] = new BitSet(pages);
            Thread thread = new Thread(() -> {
                SplittableRandom random = new SplittableRandom(1000 + index);
                while (!go.get()) {
                    Thread.onSpinWait();
                }
                for (int i = 0; i < 200_000; i++) {
                    int page = random.nextInt(pages);
                    written[index].set(page);
                    log.mark(page);
                }
                done.countDown();
            });
            thread.start();
        }
        BitSet seen = new BitSet(pages);
        go.set(true);
        while (done.getCount() > 0) {
            collect(log.readAndClear(), seen);
        }
        collect(log.readAndClear(), seen);
        BitSet expected = new BitSet(pages);
        for (BitSet bits : written) {
            expected.or(bits);
        }
        assertThat(seen).isEqualTo(expected);
    }

    private static void collect(DirtyBitmap.Snapshot snapshot, BitSet into) {
        for (long p = snapshot.next(0); p >= 0; p = snapshot.next(p + 1)) {
            into.set((int) p);
        }
    }

    @Test
    void zeroPagesAndLazyChunks() {
        GuestMemory memory = new GuestMemory(8L << 20);
        assertThat(memory.isZeroPage(100)).isTrue();
        assertThat(memory.store().isBacked(100)).isFalse();
        memory.vcpuWriteLong(100L * 4096 + 8, 42);
        assertThat(memory.isZeroPage(100)).isFalse();
        assertThat(memory.isZeroPage(101)).isTrue();
        assertThat(memory.store().isBacked(101)).as("same 2 MiB chunk").isTrue();
        memory.vcpuWriteLong(100L * 4096 + 8, 0);
        assertThat(memory.isZeroPage(100)).isTrue();
        assertThat(memory.store().backedPagesIn(0, memory.pages())).isEqualTo(512);
    }

    @Test
    void memoryMayExceedTwoGigabytes() {
        long size = 3L << 30;
        GuestMemory memory = new GuestMemory(size);
        long page = (5L << 29) / 4096;
        ByteBuffer in = ByteBuffer.allocate(4096);
        for (int i = 0; i < 4096; i++) {
            in.put((byte) i);
        }
        in.flip();
        memory.loadPage(page, in);
        ByteBuffer out = ByteBuffer.allocate(4096);
        memory.readPage(page, out);
        assertThat(out.array()).isEqualTo(in.array());
        assertThat(memory.pages()).isEqualTo(size / 4096);
        assertThat(memory.store().backedPagesIn(0, memory.pages())).as("only one chunk allocated").isEqualTo(512);
        assertThat(memory.pageView(page - 512)).as("an untouched page has no backing").isNull();
    }
}
