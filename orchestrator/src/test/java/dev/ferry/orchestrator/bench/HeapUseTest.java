package dev.ferry.orchestrator.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The benchmark's heap figures come from the daemons' GC logs, as the JVM writes them. */
class HeapUseTest {
    @Test
    void thePeakIsTheMostInUseAsACollectionBeganAndLiveTheMostOneLeft() {
        HeapUse use = HeapUse.ofLines(List.of(
                "[0.412s][info][gc] Using G1",
                "[1.020s][info][gc] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 14M->4M(256M) 3.504ms",
                "[9.870s][info][gc] GC(7) Pause Young (Concurrent Start) (G1 Humongous Allocation) 131M->52M(256M) 6.118ms",
                "[9.880s][info][gc] GC(8) Concurrent Mark Cycle",
                "[9.901s][info][gc] GC(8) Pause Remark 60M->60M(256M) 1.001ms",
                "[12.0s][info][gc] GC(9) Pause Young (Normal) (G1 Evacuation Pause) 900K->512K(256M) 0.3ms"));
        assertThat(use.peakBytes()).isEqualTo(131L << 20);
        assertThat(use.liveBytes()).isEqualTo(60L << 20);
    }

    @Test
    void everyDaemonsLogCountsAndOtherFilesDoNot(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("gc-a.log"), "[1s][info][gc] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 20M->5M(64M) 1ms\n");
        Files.writeString(dir.resolve("gc-fresh0.log"), "[1s][info][gc] GC(0) Pause Full (System.gc()) 1G->70M(1G) 9ms\n");
        Files.writeString(dir.resolve("a.log"), "GC(0) Pause Young 2000M->1999M(2048M)\n");
        HeapUse use = HeapUse.ofLogs(dir);
        assertThat(use).isEqualTo(new HeapUse(1L << 30, 70L << 20));
        assertThat(HeapUse.ofLogs(Files.createDirectory(dir.resolve("empty")))).isEqualTo(HeapUse.NONE);
    }
}
