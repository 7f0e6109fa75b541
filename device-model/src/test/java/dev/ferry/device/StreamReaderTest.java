package dev.ferry.device;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.migration.StreamFormat;
import dev.ferry.device.migration.StreamReader;
import dev.ferry.device.vm.Vm;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A device's stream read without a device: its header, its records with their offsets and the end
 * record's checks, whatever the chunking; a damaged or cut stream names its first problem.
 */
class StreamReaderTest {
    private static final long SEED = 4242L;

    private static byte[] stream(Vm vm, Device device) {
        TestVms.work(vm, device, 20, SEED);
        return TestVms.saveWhole(device);
    }

    private static StreamReader read(byte[] stream, int chunk, StreamReader.Listener listener) {
        StreamReader reader = new StreamReader(listener);
        for (int off = 0; off < stream.length; off += chunk) {
            reader.write(ByteBuffer.wrap(stream, off, Math.min(chunk, stream.length - off)));
        }
        return reader;
    }

    @ParameterizedTest
    @MethodSource("dev.ferry.device.TestVms#kinds")
    void aWholeStreamReadsInAnyChunking(DeviceKind kind) {
        DeviceConfig config = TestVms.small("dev0", kind);
        try (Vm vm = TestVms.boot(config)) {
            Device device = vm.devices().get(0);
            byte[] stream = stream(vm, device);
            List<Long> offsets = new ArrayList<>();
            StreamReader whole = read(stream, stream.length, (offset, type, payload) -> offsets.add(offset));
            StreamReader chunked = read(stream, 777, (offset, type, payload) -> {
            });
            for (StreamReader reader : List.of(whole, chunked)) {
                assertThat(reader.finish()).isNull();
                assertThat(reader.bytes()).isEqualTo(stream.length);
                assertThat(reader.header().kind()).isEqualTo(kind.label());
                assertThat(reader.header().version()).isEqualTo(StreamFormat.VERSION);
                assertThat(reader.header().memoryBytes()).isEqualTo(config.memoryBytes());
                assertThat(reader.counts()).containsEntry("HEADER", 1L).containsEntry("STATE", 1L).containsEntry("END", 1L);
                assertThat(reader.endOffset()).isEqualTo(stream.length - StreamFormat.END_RECORD_BYTES);
                assertThat(reader.firstOffsets()).containsEntry("HEADER", 0L);
            }
            assertThat(offsets).first().isEqualTo(0L);
            assertThat(offsets).isSorted().hasSize((int) whole.counts().values().stream().mapToLong(Long::longValue).sum());
        }
    }

    static List<DeviceKind> gpuAndNic() {
        return List.of(DeviceKind.GPU, DeviceKind.NIC);
    }

    @ParameterizedTest
    @MethodSource("gpuAndNic")
    void aDamagedOrCutStreamNamesItsFirstProblem(DeviceKind kind) {
        try (Vm vm = TestVms.boot(TestVms.small("dev0", kind))) {
            byte[] stream = stream(vm, vm.devices().get(0));
            byte[] damaged = stream.clone();
            int at = new SplittableRandom(SEED).nextInt(40, stream.length - StreamFormat.END_RECORD_BYTES);
            damaged[at] ^= 0x10;
            String problem = read(damaged, 4096, (offset, type, payload) -> {
            }).finish();
            assertThat(problem).isNotNull();

            byte[] cut = java.util.Arrays.copyOf(stream, stream.length - 3);
            assertThat(read(cut, 4096, (offset, type, payload) -> {
            }).finish()).startsWith("incomplete stream");
        }
    }
}
