package dev.ferry.device.memory;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** Guest memory's allocator: zeroed, big-endian direct buffers, freed when asked, on every JDK. */
class DirectMemoryTest {
    @Test
    void buffersAreZeroedDirectBigEndianAndCanBeFreedAndAllocatedAgain() {
        String expected = Runtime.version().feature() >= 22 ? "arena" : "cleaner";
        assertThat(DirectMemory.strategy()).as("on Java %s", Runtime.version().feature()).isEqualTo(expected);
        for (int round = 0; round < 64; round++) {
            ByteBuffer buffer = DirectMemory.allocate(1 << 20);
            assertThat(buffer.isDirect()).isTrue();
            assertThat(buffer.order()).isEqualTo(ByteOrder.BIG_ENDIAN);
            assertThat(buffer.capacity()).isEqualTo(1 << 20);
            for (int at = 0; at < buffer.capacity(); at += 4096) {
                assertThat(buffer.getLong(at)).as("round %d, byte %d", round, at).isZero();
            }
            buffer.putLong(round * 8, -1L);
            assertThat(buffer.slice(round * 8, 8).getLong(0)).isEqualTo(-1L);
            DirectMemory.free(buffer);
        }
    }

    @Test
    void freeingABufferItDidNotAllocateLeavesItToTheCollector() {
        ByteBuffer foreign = ByteBuffer.allocateDirect(4096);
        if (DirectMemory.strategy().equals("arena")) {
            DirectMemory.free(foreign);
            foreign.putLong(0, 7);
            assertThat(foreign.getLong(0)).isEqualTo(7);
        }
    }
}
