package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.StreamFormat;
import dev.ferry.device.migration.TransitionFailure;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.migration.WindowWrite;
import dev.ferry.device.vm.Vm;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * W7: a device processes RESUMING data as it arrives; {@code loadedBytes} counts what it processed; data
 * that fails its checks fails that write and the device goes to ERROR (D8, only earlier); leaving RESUMING
 * then processes only what is left.
 */
class IncrementalLoadTest {
    private static final long SEED = 7007L;

    /** A whole stream of a device that worked, saved live through pre-copy and stop-and-copy. */
    private static byte[] stream(Vm vm, Device device) {
        TestVms.work(vm, device, 30, SEED);
        device.ownWork(20, new SplittableRandom(SEED));
        return TestVms.saveWhole(device);
    }

    /** The offsets at which the stream's records end. */
    private static TreeSet<Long> recordEnds(byte[] stream) {
        TreeSet<Long> ends = new TreeSet<>();
        ByteBuffer buffer = ByteBuffer.wrap(stream);
        while (buffer.remaining() >= StreamFormat.RECORD_HEADER_BYTES) {
            buffer.get();
            int length = buffer.getInt();
            buffer.position(buffer.position() + length);
            ends.add((long) buffer.position());
        }
        return ends;
    }

    @ParameterizedTest
    @MethodSource("dev.ferry.device.TestVms#kinds")
    void w7LoadedBytesCountsTheCompleteRecordsAsTheyArrive(DeviceKind kind) {
        DeviceConfig config = TestVms.small("dev0", kind);
        try (Vm source = TestVms.boot(config); Vm target = TestVms.boot(config)) {
            byte[] stream = stream(source, source.devices().get(0));
            TreeSet<Long> ends = recordEnds(stream);
            Device twin = target.devices().get(0);
            assertThat(twin.loadedBytes()).isZero();
            require(twin.setState(DeviceState.RESUMING));
            for (int off = 0; off < stream.length; off += 1001) {
                int n = Math.min(1001, stream.length - off);
                WindowWrite written = twin.writeWindow(ByteBuffer.wrap(stream, off, n));
                Long expected = ends.floor((long) off + n);
                assertThat(written).isEqualTo(new WindowWrite.Accepted(expected == null ? 0 : expected));
                assertThat(twin.loadedBytes()).isEqualTo(written.loadedBytes());
            }
            assertThat(twin.loadedBytes()).isEqualTo(stream.length);
            require(twin.setState(DeviceState.STOP));
            assertThat(twin.loadedBytes()).as("kept after RESUMING was left").isEqualTo(stream.length);
            twin.reset();
            assertThat(twin.loadedBytes()).isZero();
        }
    }

    @Test
    void w7EverythingButTheEndIsAppliedBeforeRESUMINGIsLeft() {
        DeviceConfig config = TestVms.small("gpu0", DeviceKind.GPU);
        try (Vm source = TestVms.boot(config); Vm target = TestVms.boot(config)) {
            Device gpu = source.devices().get(0);
            byte[] stream = stream(source, gpu);
            Device twin = target.devices().get(0);
            require(twin.setState(DeviceState.RESUMING));
            twin.writeWindow(ByteBuffer.wrap(stream, 0, stream.length - StreamFormat.END_RECORD_BYTES));
            // Memory and registers are in place already: only the end record's checks are left.
            assertThat(twin.digest()).isEqualTo(gpu.digest());
            twin.writeWindow(ByteBuffer.wrap(stream, stream.length - StreamFormat.END_RECORD_BYTES, StreamFormat.END_RECORD_BYTES));
            require(twin.setState(DeviceState.STOP));
            assertThat(twin.digest()).isEqualTo(gpu.digest());
        }
    }

    @Test
    void w7AWrongHeaderFailsTheFirstWriteIntoError() {
        try (Vm source = TestVms.boot(TestVms.small("dev0", DeviceKind.GPU));
             Vm nic = TestVms.boot(TestVms.small("dev0", DeviceKind.NIC))) {
            byte[] stream = TestVms.saveWhole(source.devices().get(0));
            Device twin = nic.devices().get(0);
            List<String> failures = new ArrayList<>();
            twin.addListener(new TransitionListener() {
                @Override
                public void windowFailed(Device device, TransitionResult.Failed failure, long startNanos, long durationNanos) {
                    failures.add(device.id() + " " + failure.from() + " " + failure.failure());
                }
            });
            require(twin.setState(DeviceState.RESUMING));
            WindowWrite written = twin.writeWindow(ByteBuffer.wrap(stream, 0, 100));
            assertThat(written).isInstanceOf(WindowWrite.Failed.class);
            WindowWrite.Failed failed = (WindowWrite.Failed) written;
            assertThat(failed.loadedBytes()).isZero();
            assertThat(failed.failure().failure()).isEqualTo(TransitionFailure.LOAD_FAILED);
            assertThat(failed.describe()).contains("gpu device").contains("nic").contains("D8");
            assertThat(twin.state()).isEqualTo(DeviceState.ERROR);
            assertThat(failures).containsExactly("dev0 RESUMING LOAD_FAILED");
            // W6: the window takes no more writes; D4: only reset leaves ERROR.
            assertThatThrownBy(() -> twin.writeWindow(ByteBuffer.wrap(stream, 100, 10))).isInstanceOf(Device.WindowException.class);
            assertThat(twin.setState(DeviceState.RUNNING)).isInstanceOf(TransitionResult.Rejected.class);
            assertThat(twin.reset()).isEqualTo(DeviceState.RUNNING);
        }
    }

    @Test
    void w7AChecksumMismatchFailsTheWriteThatCarriesTheEndRecord() {
        DeviceConfig config = TestVms.small("gpu0", DeviceKind.GPU);
        try (Vm source = TestVms.boot(config); Vm target = TestVms.boot(config)) {
            byte[] stream = stream(source, source.devices().get(0));
            // A byte inside the second record (a page's data): no record can show it, only the checksum.
            long firstEnd = recordEnds(stream).first();
            byte[] corrupt = stream.clone();
            corrupt[(int) firstEnd + 100] ^= 0x20;
            Device twin = target.devices().get(0);
            require(twin.setState(DeviceState.RESUMING));
            int beforeEnd = stream.length - StreamFormat.END_RECORD_BYTES;
            assertThat(twin.writeWindow(ByteBuffer.wrap(corrupt, 0, beforeEnd)).accepted()).isTrue();
            assertThat(twin.loadedBytes()).isEqualTo(beforeEnd);
            WindowWrite end = twin.writeWindow(ByteBuffer.wrap(corrupt, beforeEnd, StreamFormat.END_RECORD_BYTES));
            assertThat(end).isInstanceOf(WindowWrite.Failed.class);
            assertThat(((WindowWrite.Failed) end).describe()).contains("checksum mismatch");
            assertThat(end.loadedBytes()).as("the end record was not processed").isEqualTo(beforeEnd);
            assertThat(twin.state()).isEqualTo(DeviceState.ERROR);
            assertThat(twin.loadedBytes()).isEqualTo(beforeEnd);
        }
    }

    @Test
    void w7DataAfterTheEndFailsThatWrite() {
        DeviceConfig config = TestVms.small("ser0", DeviceKind.SERIAL);
        try (Vm source = TestVms.boot(config); Vm target = TestVms.boot(config)) {
            byte[] stream = stream(source, source.devices().get(0));
            Device twin = target.devices().get(0);
            require(twin.setState(DeviceState.RESUMING));
            assertThat(twin.writeWindow(ByteBuffer.wrap(stream)).accepted()).isTrue();
            WindowWrite extra = twin.writeWindow(ByteBuffer.wrap(new byte[] {0}));
            assertThat(extra).isInstanceOf(WindowWrite.Failed.class);
            assertThat(((WindowWrite.Failed) extra).describe()).contains("after the end record");
            assertThat(twin.state()).isEqualTo(DeviceState.ERROR);
        }
    }

    @ParameterizedTest
    @MethodSource("dev.ferry.device.TestVms#kinds")
    void d8AnIncompleteStreamIsAcceptedByEveryWriteAndFailsOnlyWhenRESUMINGIsLeft(DeviceKind kind) {
        DeviceConfig config = TestVms.small("dev0", kind);
        try (Vm source = TestVms.boot(config); Vm target = TestVms.boot(config)) {
            byte[] stream = stream(source, source.devices().get(0));
            Device twin = target.devices().get(0);
            require(twin.setState(DeviceState.RESUMING));
            byte[] truncated = Arrays.copyOf(stream, stream.length - 1);
            assertThat(twin.writeWindow(ByteBuffer.wrap(truncated)).accepted()).isTrue();
            TransitionResult left = twin.setState(DeviceState.STOP);
            assertThat(left).isInstanceOf(TransitionResult.Failed.class);
            assertThat(((TransitionResult.Failed) left).message()).contains("incomplete stream");
            assertThat(twin.state()).isEqualTo(DeviceState.ERROR);
        }
    }
}
