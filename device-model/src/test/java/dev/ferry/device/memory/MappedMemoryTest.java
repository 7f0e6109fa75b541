package dev.ferry.device.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.jna.Native;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Guest memory mapped in huge pages: aligned, zero until written, eligible for huge pages, reused once freed. */
class MappedMemoryTest {
    private static final int HUGE = MappedMemory.HUGE_PAGE;

    @BeforeAll
    static void onLinux() {
        assumeTrue(System.getProperty("os.name", "").toLowerCase(Locale.ROOT).equals("linux"), "mappings are made on Linux only");
    }

    @Test
    void wholeHugePagesAreMappedOnLinuxWithJna() {
        assertThat(DirectMemory.hugePages()).isTrue();
    }

    @Test
    void aMappingStartsOnAHugePageReadsZerosAndIsBigEndian() {
        for (int pages : new int[] {1, 3, 16}) {
            ByteBuffer buffer = DirectMemory.allocate(pages * HUGE);
            try {
                assertThat(buffer.isDirect()).isTrue();
                assertThat(buffer.order()).isEqualTo(ByteOrder.BIG_ENDIAN);
                assertThat(buffer.capacity()).isEqualTo(pages * HUGE);
                assertThat(address(buffer) % HUGE).as("%d huge pages", pages).isZero();
                for (int at = 0; at < buffer.capacity(); at += 4096) {
                    assertThat(buffer.getLong(at)).isZero();
                }
                buffer.putInt(8, 0x01020304);
                assertThat(buffer.get(8)).isEqualTo((byte) 1);
            } finally {
                DirectMemory.free(buffer);
            }
        }
    }

    @Test
    void aFreedRangeIsMappedAgainAndReadsZeros() {
        MappedMemory memory = MappedMemory.find();
        assertThat(memory).isNotNull();
        ByteBuffer first = memory.map(2 * HUGE);
        long at = address(first);
        for (int i = 0; i < first.capacity(); i += 4096) {
            first.putLong(i, -1L);
        }
        assertThat(memory.liveBytes()).isEqualTo(2L * HUGE);
        assertThat(memory.free(first)).isTrue();
        assertThat(memory.free(first)).as("freed twice").isFalse();
        assertThat(memory.liveBytes()).as("freed, though its range is kept").isZero();
        long mapped = memory.mappedBytes();

        ByteBuffer second = memory.map(2 * HUGE);
        assertThat(address(second)).as("the freed range, kept").isEqualTo(at);
        assertThat(memory.mappedBytes()).as("no new address space").isEqualTo(mapped);
        for (int i = 0; i < second.capacity(); i += 4096) {
            assertThat(second.getLong(i)).as("byte %d", i).isZero();
        }
        ByteBuffer other = memory.map(HUGE);
        assertThat(address(other)).as("another size maps anew").isNotEqualTo(at);
        assertThat(memory.free(ByteBuffer.allocateDirect(16))).as("not its own").isFalse();
        memory.free(second);
        memory.free(other);
    }

    @Test
    void aMappingIsEligibleForHugePagesWhereTheKernelOffersThemOnAdvice() throws IOException {
        Path enabled = Path.of("/sys/kernel/mm/transparent_hugepage/enabled");
        assumeTrue(Files.exists(enabled) && !Files.readString(enabled).contains("[never]"), "transparent huge pages are off");
        ByteBuffer buffer = DirectMemory.allocate(4 * HUGE);
        try {
            long start = address(buffer);
            // The kernel's own word on the mapping that holds it: aligned, advised, so huge pages may back it.
            assertThat(smapsField(start, "THPeligible")).isEqualTo("1");
        } finally {
            DirectMemory.free(buffer);
        }
    }

    @Test
    void theKernelsModeIsTheOneItMarks() throws IOException {
        Path enabled = Path.of("/sys/kernel/mm/transparent_hugepage/enabled");
        assumeTrue(Files.exists(enabled), "no transparent huge pages in this kernel");
        String marked = Files.readString(enabled).replaceAll("(?s).*\\[(\\w+)\\].*", "$1");
        assertThat(ChunkPool.hugePageMode()).isIn("always", "madvise", "never").isEqualTo(marked);
    }

    @Test
    void sizesThatAreNotWholeHugePagesComeFromTheJdk() {
        ByteBuffer buffer = DirectMemory.allocate(HUGE + 4096);
        try {
            assertThat(buffer.capacity()).isEqualTo(HUGE + 4096);
            assertThat(buffer.getLong(HUGE)).isZero();
        } finally {
            DirectMemory.free(buffer);
        }
    }

    private static long address(ByteBuffer buffer) {
        return Pointer.nativeValue(Native.getDirectBufferPointer(buffer));
    }

    /** A field of /proc/self/smaps for the mapping that holds {@code address}. */
    private static String smapsField(long address, String field) throws IOException {
        List<String> lines = Files.readAllLines(Path.of("/proc/self/smaps"), StandardCharsets.US_ASCII);
        boolean inside = false;
        for (String line : lines) {
            if (line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                String[] range = line.substring(0, line.indexOf(' ')).split("-");
                inside = Long.parseUnsignedLong(range[0], 16) <= address && address < Long.parseUnsignedLong(range[1], 16);
            } else if (inside && line.startsWith(field + ":")) {
                return line.substring(field.length() + 1).strip();
            }
        }
        throw new AssertionError("no mapping holds " + Long.toHexString(address) + " in /proc/self/smaps");
    }
}
