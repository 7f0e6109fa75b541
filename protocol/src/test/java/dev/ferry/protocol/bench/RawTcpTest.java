package dev.ferry.protocol.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The baseline copies move every byte, over one stream or several, with write and with sendfile. */
class RawTcpTest {
    @Test
    void everySenderCopiesEveryByteOverEveryStreamCount(@TempDir Path dir) throws Exception {
        int size = 3 << 20;
        ByteBuffer source = ByteBuffer.allocateDirect(size);
        RawTcp.fillRandom(source, 11);
        Path file = dir.resolve("memory");
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
                StandardOpenOption.WRITE)) {
            for (long at = 0; at < size; ) {
                at += channel.write(source.slice((int) at, size - (int) at), at);
            }
            for (RawTcp.Sender sender : RawTcp.Sender.values()) {
                for (int streams : new int[] {1, 3}) {
                    ByteBuffer target = ByteBuffer.allocateDirect(size);
                    RawTcp.Timed timed = RawTcp.timedCopy(source, channel, target, streams, sender);
                    assertThat(target.mismatch(source)).as("%s over %d streams", sender, streams).isEqualTo(-1);
                    assertThat(timed.wallNanos()).isPositive();
                    assertThat(timed.mibPerSecond(size)).isPositive();
                }
            }
        }
        assertThat(Files.size(file)).isEqualTo(size);
    }
}
