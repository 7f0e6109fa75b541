package dev.ferry.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import java.util.List;
import org.junit.jupiter.api.Test;

class NettyLeaksTest {

    @Test
    void anUnreleasedBufferIsReportedAndAReleasedOneIsNot() {
        assertThat(ResourceLeakDetector.getLevel()).isEqualTo(ResourceLeakDetector.Level.PARANOID);
        ByteBuf released = UnpooledByteBufAllocator.DEFAULT.directBuffer(64);
        released.release();
        assertThat(RecordingLeakDetectorFactory.collect()).isEmpty();

        leak();
        List<String> leaks = List.of();
        for (int attempt = 0; attempt < 20 && leaks.isEmpty(); attempt++) {
            leaks = RecordingLeakDetectorFactory.collect();
        }
        assertThat(leaks).hasSize(1);
        assertThat(leaks.get(0)).contains("ByteBuf").contains("leak");
    }

    private static void leak() {
        ByteBuf lost = UnpooledByteBufAllocator.DEFAULT.directBuffer(64);
        lost.writeLong(1);
    }
}
