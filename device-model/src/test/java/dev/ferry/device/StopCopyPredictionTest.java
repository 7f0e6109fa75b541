package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.GraceStates;
import dev.ferry.device.vm.Vm;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * W9: {@link Device#stopCopyBytes()} predicts exactly what stop-and-copy then streams, for every kind, with
 * and without internal logging, in every state of a save session, after the device dirtied its memory by
 * MMIO work and by its own work.
 */
class StopCopyPredictionTest {
    private static final long SEED = 909L;

    static Stream<Arguments> kinds() {
        return Stream.of(DeviceKind.values()).flatMap(kind -> Stream.of(Arguments.of(kind, true), Arguments.of(kind, false)));
    }

    private static DeviceConfig config(DeviceKind kind, boolean preCopy) {
        // 128 KiB: two 64 KiB pieces, so that part of device memory can stay unallocated (ZERO records).
        return TestVms.small("dev0", kind).withMemoryBytes(128 * 1024).withPreCopy(preCopy);
    }

    /** Dirties device memory by both paths: queued MMIO work (engine) and the device's own writes. */
    private static void dirty(Vm vm, Device device, int round) {
        TestVms.work(vm, device, 7, SEED + round);
        device.ownWork(5 + round, new SplittableRandom(SEED * 31 + round));
    }

    /** Stop-and-copy from here, drained: the bytes it streamed. */
    private static long stopAndDrain(Device device) {
        require(device.setState(DeviceState.STOP_COPY));
        long streamed = TestVms.drain(device, 3000).length;
        assertThat(device.streamFinished()).isTrue();
        return streamed;
    }

    @ParameterizedTest(name = "{0} precopy={1}")
    @MethodSource("kinds")
    void w9WithoutPreCopyReadsThePredictionIsTheWholeStream(DeviceKind kind, boolean preCopy) {
        try (Vm vm = TestVms.boot(config(kind, preCopy))) {
            Device device = vm.devices().get(0);
            dirty(vm, device, 1);
            long beforeSession = device.stopCopyBytes();
            require(device.setState(DeviceState.PRE_COPY));
            assertThat(device.stopCopyBytes()).as("a session that read nothing").isEqualTo(beforeSession);
            assertThat(stopAndDrain(device)).isEqualTo(beforeSession);
        }
    }

    @ParameterizedTest(name = "{0} precopy={1}")
    @MethodSource("kinds")
    void w9AfterPartialPreCopyAndMoreDirtyingThePredictionIsWhatStopAndCopyStreams(DeviceKind kind, boolean preCopy) {
        try (Vm vm = TestVms.boot(config(kind, preCopy))) {
            Device device = vm.devices().get(0);
            dirty(vm, device, 1);
            require(device.setState(DeviceState.PRE_COPY));
            // Part of the initial data, ending mid-record (W2), then more dirtying, some of it of pages read.
            device.readWindow(ByteBuffer.allocate(3 * 4096 + 77));
            dirty(vm, device, 2);
            long predicted = device.stopCopyBytes();
            if (preCopy) {
                assertThat(predicted).as("what pre-copy has left, and the registers and end")
                        .isGreaterThan(device.pendingBytes());
            }
            // The grace state (S3) changes nothing of it.
            require(device.setState(GraceStates.saveGrace(device.config().ndma())));
            assertThat(device.stopCopyBytes()).isEqualTo(predicted);
            assertThat(stopAndDrain(device)).isEqualTo(predicted);
        }
    }

    @ParameterizedTest(name = "{0} precopy={1}")
    @MethodSource("kinds")
    void w9AfterPreCopyDrainedAndDirtiedAgainThePredictionCountsTheDirtyPages(DeviceKind kind, boolean preCopy) {
        try (Vm vm = TestVms.boot(config(kind, preCopy))) {
            Device device = vm.devices().get(0);
            dirty(vm, device, 1);
            require(device.setState(DeviceState.PRE_COPY));
            TestVms.drain(device, 5000);
            long clean = device.stopCopyBytes();
            dirty(vm, device, 3);
            long predicted = device.stopCopyBytes();
            if (preCopy) {
                assertThat(predicted).as("pages written again").isGreaterThan(clean);
            }
            assertThat(stopAndDrain(device)).isEqualTo(predicted);
        }
    }

    @ParameterizedTest(name = "{0} precopy={1}")
    @MethodSource("kinds")
    void w9InStopAndCopyThePredictionIsWhatIsLeftToRead(DeviceKind kind, boolean preCopy) {
        try (Vm vm = TestVms.boot(config(kind, preCopy))) {
            Device device = vm.devices().get(0);
            dirty(vm, device, 1);
            require(device.setState(DeviceState.STOP_COPY));
            long total = device.stopCopyBytes();
            ByteBuffer some = ByteBuffer.allocate(4096 + 13);
            int read = device.readWindow(some);
            assertThat(device.stopCopyBytes()).isEqualTo(total - read).isEqualTo(device.pendingBytes());
            long rest = TestVms.drain(device, 2000).length;
            assertThat(read + rest).isEqualTo(total);
            assertThat(device.stopCopyBytes()).isZero();
        }
    }
}
