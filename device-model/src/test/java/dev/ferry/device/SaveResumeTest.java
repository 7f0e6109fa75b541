package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionFailure;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.vm.Vm;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every kind saves (pre-copy, then stop-and-copy) and resumes into a fresh device with an equal digest,
 * whatever the chunking (W2, W5); any corruption or truncation of the stream makes the load fail into
 * ERROR (D8, W5).
 */
class SaveResumeTest {

    private static final long SEED = 20261124L;

    /** Saves a device that works between and during the two phases; returns the whole stream. */
    private static byte[] liveSave(Vm vm, Device device) {
        TestVms.work(vm, device, 40, SEED);
        require(device.setState(DeviceState.PRE_COPY));
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        ByteBuffer half = ByteBuffer.allocate((int) Math.max(1, device.pendingBytes() / 2));
        device.readWindow(half);
        stream.write(half.array(), 0, half.position());
        TestVms.work(vm, device, 15, SEED + 1);
        byte[] rest = TestVms.drain(device, 4096);
        stream.write(rest, 0, rest.length);
        TestVms.work(vm, device, 15, SEED + 2);
        require(device.setState(DeviceState.STOP_COPY));
        byte[] last = TestVms.drain(device, 5000);
        stream.write(last, 0, last.length);
        assertThat(device.streamFinished()).isTrue();
        return stream.toByteArray();
    }

    @ParameterizedTest
    @MethodSource("dev.ferry.device.TestVms#kinds")
    void w5AnyChunkingResumesToAnEqualDigest(DeviceKind kind) {
        DeviceConfig config = TestVms.small("dev0", kind);
        try (Vm source = TestVms.boot(config); Vm target = TestVms.boot(config)) {
            Device device = source.devices().get(0);
            byte[] stream = liveSave(source, device);
            byte[] expected = device.digest();
            Device twin = target.devices().get(0);
            List<Integer> chunks = new ArrayList<>(List.of(1, 2, 3, 5, 7, 64, 511, 4096, 4105, 65536, stream.length));
            for (int chunk : chunks) {
                twin.reset();
                require(TestVms.load(twin, stream, chunk, DeviceState.STOP));
                assertThat(twin.digest()).as("%s in chunks of %d", kind, chunk).isEqualTo(expected);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("dev.ferry.device.TestVms#kinds")
    void d8FlippingAnyByteFailsTheLoadIntoError(DeviceKind kind) {
        DeviceConfig config = TestVms.small("dev0", kind).withMemoryBytes(8192);
        try (Vm source = TestVms.boot(config); Vm target = TestVms.boot(config)) {
            Device device = source.devices().get(0);
            byte[] stream = liveSave(source, device);
            Device twin = target.devices().get(0);
            SplittableRandom random = new SplittableRandom(SEED);
            List<Integer> accepted = new ArrayList<>();
            for (int i = 0; i < stream.length; i++) {
                byte[] corrupt = stream.clone();
                corrupt[i] ^= (byte) (1 + random.nextInt(255));
                twin.reset();
                TransitionResult result = TestVms.load(twin, corrupt, 4096, DeviceState.STOP);
                if (!(result instanceof TransitionResult.Failed failed) || failed.failure() != TransitionFailure.LOAD_FAILED
                        || !twin.state().isError()) {
                    accepted.add(i);
                }
            }
            assertThat(accepted).as("byte positions whose corruption was accepted, of %d", stream.length).isEmpty();
        }
    }

    @ParameterizedTest
    @MethodSource("dev.ferry.device.TestVms#kinds")
    void d8EveryTruncationFailsTheLoadIntoError(DeviceKind kind) {
        DeviceConfig config = TestVms.small("dev0", kind).withMemoryBytes(8192);
        try (Vm source = TestVms.boot(config); Vm target = TestVms.boot(config)) {
            byte[] stream = liveSave(source, source.devices().get(0));
            Device twin = target.devices().get(0);
            List<Integer> accepted = new ArrayList<>();
            for (int length = 0; length < stream.length; length++) {
                twin.reset();
                TransitionResult result = TestVms.load(twin, Arrays.copyOf(stream, length), 4096, DeviceState.STOP);
                if (!(result instanceof TransitionResult.Failed) || !twin.state().isError()) {
                    accepted.add(length);
                }
            }
            assertThat(accepted).as("truncated lengths accepted, of %d", stream.length).isEmpty();
            // And appending anything after the end record fails too.
            twin.reset();
            byte[] longer = Arrays.copyOf(stream, stream.length + 1);
            assertThat(TestVms.load(twin, longer, 4096, DeviceState.STOP)).isInstanceOf(TransitionResult.Failed.class);
        }
    }

    @Test
    void d8IncompatibleKindOrConfigurationFailsTheLoad() {
        try (Vm source = TestVms.boot(TestVms.small("dev0", DeviceKind.GPU));
             Vm nic = TestVms.boot(TestVms.small("dev0", DeviceKind.NIC));
             Vm bigger = TestVms.boot(TestVms.small("dev0", DeviceKind.GPU).withMemoryBytes(32 * 1024))) {
            byte[] stream = TestVms.saveWhole(source.devices().get(0));
            TransitionResult wrongKind = TestVms.load(nic.devices().get(0), stream, 4096, DeviceState.RUNNING);
            assertThat(wrongKind).isInstanceOf(TransitionResult.Failed.class);
            assertThat(((TransitionResult.Failed) wrongKind).message()).contains("gpu device").contains("nic");
            TransitionResult wrongConfig = TestVms.load(bigger.devices().get(0), stream, 4096, DeviceState.RUNNING);
            assertThat(((TransitionResult.Failed) wrongConfig).message()).contains("incompatible configuration");
        }
    }

    @Test
    void defaultSizedGpuMovesItsSixtyFourMegabytesInPreCopy() {
        DeviceConfig config = DeviceConfig.of("gpu0", DeviceKind.GPU);
        assertThat(config.memoryBytes()).isEqualTo(64L << 20);
        try (Vm source = TestVms.boot(config); Vm target = TestVms.boot(config)) {
            Device gpu = source.devices().get(0);
            TestVms.work(source, gpu, 200, SEED);
            require(gpu.setState(DeviceState.PRE_COPY));
            byte[] preCopy = TestVms.drain(gpu, 1 << 20);
            TestVms.work(source, gpu, 10, SEED + 1);
            require(gpu.setState(DeviceState.STOP_COPY));
            byte[] stopCopy = TestVms.drain(gpu, 1 << 20);
            assertThat(stopCopy.length).as("stop-and-copy sends only what changed").isLessThan(preCopy.length / 10);
            Device twin = target.devices().get(0);
            require(twin.setState(DeviceState.RESUMING));
            twin.writeWindow(ByteBuffer.wrap(preCopy));
            twin.writeWindow(ByteBuffer.wrap(stopCopy));
            require(twin.setState(DeviceState.STOP));
            assertThat(twin.digest()).isEqualTo(gpu.digest());
        }
    }
}
