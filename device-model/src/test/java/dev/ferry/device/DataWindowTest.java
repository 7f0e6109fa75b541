package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.StreamFormat;
import dev.ferry.device.vm.Vm;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** The data window (SPEC §2). */
class DataWindowTest {

    @Test
    void w1PendingCountsDownToTheEndOfStreamInStopAndCopy() {
        try (Vm vm = TestVms.boot(TestVms.small("nic0", DeviceKind.NIC))) {
            Device nic = vm.devices().get(0);
            TestVms.work(vm, nic, 30, 1);
            require(nic.setState(DeviceState.STOP_COPY));
            long total = nic.pendingBytes();
            assertThat(total).isPositive();
            ByteBuffer chunk = ByteBuffer.allocate(1000);
            long read = 0;
            while (true) {
                long before = nic.pendingBytes();
                chunk.clear();
                int n = nic.readWindow(chunk);
                read += n;
                assertThat(nic.pendingBytes()).isEqualTo(before - n);
                if (n == 0) {
                    break;
                }
            }
            assertThat(read).isEqualTo(total);
            assertThat(nic.pendingBytes()).isZero();
            assertThat(nic.streamFinished()).isTrue();
        }
    }

    @Test
    void w1PreCopyZeroIsTemporaryWhileTheDeviceRuns() {
        try (Vm vm = TestVms.boot(TestVms.small("gpu0", DeviceKind.GPU))) {
            Device gpu = vm.devices().get(0);
            require(gpu.setState(DeviceState.PRE_COPY));
            TestVms.drain(gpu, 4096);
            assertThat(gpu.pendingBytes()).isZero();
            assertThat(gpu.streamFinished()).isFalse();
            TestVms.work(vm, gpu, 5, 2);
            assertThat(gpu.pendingBytes()).as("the device dirtied what was read").isPositive();
        }
    }

    @Test
    void w3DeviceWithoutLoggingStreamsNothingInPreCopyAndEverythingInStopAndCopy() {
        try (Vm vm = TestVms.boot(TestVms.small("nic0", DeviceKind.NIC))) {
            Device nic = vm.devices().get(0);
            assertThat(nic.config().preCopy()).isFalse();
            TestVms.work(vm, nic, 10, 3);
            require(nic.setState(DeviceState.PRE_COPY));
            assertThat(nic.pendingBytes()).isZero();
            assertThat(nic.initialBytes()).isZero();
            assertThat(nic.dirtyBytes()).isZero();
            assertThat(nic.readWindow(ByteBuffer.allocate(100))).isZero();
            long estimate = nic.stopCopyBytes();
            require(nic.setState(DeviceState.STOP_COPY));
            long pending = nic.pendingBytes();
            assertThat(pending).isEqualTo(estimate);
            assertThat(TestVms.drain(nic, 4096)).hasSize((int) pending);
        }
    }

    @Test
    void w4InitialAndDirtyBytesTrackWhatWasReadAndWrittenAgain() {
        try (Vm vm = TestVms.boot(TestVms.small("gpu0", DeviceKind.GPU))) {
            Device gpu = vm.devices().get(0);
            TestVms.work(vm, gpu, 20, 4);
            require(gpu.setState(DeviceState.PRE_COPY));
            long initial = gpu.initialBytes();
            assertThat(initial).isPositive();
            assertThat(gpu.dirtyBytes()).isZero();
            TestVms.drain(gpu, 4096);
            assertThat(gpu.initialBytes()).isZero();
            TestVms.work(vm, gpu, 3, 5);
            assertThat(gpu.dirtyBytes()).isPositive();
            assertThat(gpu.dirtyBytes() % StreamFormat.PAGE_RECORD_BYTES).isZero();
            assertThat(gpu.pendingBytes()).isEqualTo(gpu.dirtyBytes());
        }
    }

    @Test
    void w2SwitchingToStopAndCopyMidRecordCarriesPartialDataForward() {
        try (Vm source = TestVms.boot(TestVms.small("gpu0", DeviceKind.GPU));
             Vm target = TestVms.boot(TestVms.small("gpu0", DeviceKind.GPU))) {
            Device gpu = source.devices().get(0);
            TestVms.work(source, gpu, 20, 6);
            require(gpu.setState(DeviceState.PRE_COPY));
            ByteArrayOutputStream stream = new ByteArrayOutputStream();
            ByteBuffer odd = ByteBuffer.allocate(StreamFormat.PAGE_RECORD_BYTES + 3);
            gpu.readWindow(odd);
            stream.write(odd.array(), 0, odd.position());
            TestVms.work(source, gpu, 5, 7);
            require(gpu.setState(DeviceState.STOP_COPY));
            byte[] rest = TestVms.drain(gpu, 777);
            stream.write(rest, 0, rest.length);

            Device twin = target.devices().get(0);
            require(TestVms.load(twin, stream.toByteArray(), 1000, DeviceState.STOP));
            assertThat(twin.digest()).isEqualTo(gpu.digest());
        }
    }

    @Test
    void w6WindowOutsideItsSessionFailsAndChangesNothing() {
        try (Vm vm = TestVms.boot(TestVms.small("nic0", DeviceKind.NIC))) {
            Device nic = vm.devices().get(0);
            assertThatThrownBy(() -> nic.readWindow(ByteBuffer.allocate(10))).isInstanceOf(Device.WindowException.class);
            assertThatThrownBy(() -> nic.writeWindow(ByteBuffer.allocate(10))).isInstanceOf(Device.WindowException.class);
            assertThat(nic.state()).isEqualTo(DeviceState.RUNNING);

            require(nic.setState(DeviceState.STOP_COPY));
            long pending = nic.pendingBytes();
            assertThatThrownBy(() -> nic.writeWindow(ByteBuffer.allocate(10))).isInstanceOf(Device.WindowException.class);
            assertThat(nic.pendingBytes()).isEqualTo(pending);
            assertThat(nic.state()).isEqualTo(DeviceState.STOP_COPY);

            require(nic.setState(DeviceState.RESUMING));
            assertThatThrownBy(() -> nic.readWindow(ByteBuffer.allocate(10))).isInstanceOf(Device.WindowException.class);
            assertThat(nic.state()).isEqualTo(DeviceState.RESUMING);
        }
    }

    @Test
    void d5ResetFromAnyStateDiscardsTheWindowAndRuns() {
        try (Vm vm = TestVms.boot(TestVms.small("gpu0", DeviceKind.GPU))) {
            Device gpu = vm.devices().get(0);
            for (int start : new int[] {0, 2, 3, 4, 8, 9, 10, 11, 12}) {
                gpu.reset();
                require(gpu.setState(DeviceState.of(start)));
                assertThat(gpu.reset()).isEqualTo(DeviceState.RUNNING);
                assertThat(gpu.state()).isEqualTo(DeviceState.RUNNING);
                assertThat(gpu.pendingBytes()).isZero();
                assertThatThrownBy(() -> gpu.readWindow(ByteBuffer.allocate(10))).isInstanceOf(Device.WindowException.class);
            }
            require(gpu.setState(DeviceState.RESUMING));
            assertThat(gpu.setState(DeviceState.RUNNING).succeeded()).isFalse();
            assertThat(gpu.state()).isEqualTo(DeviceState.ERROR);
            assertThat(gpu.reset()).isEqualTo(DeviceState.RUNNING);
            TestVms.work(vm, gpu, 3, 8);
            assertThat(gpu.stats().operations()).isGreaterThanOrEqualTo(3);
        }
    }

    @Test
    void d13ErrorStartsNoDmaAndTakesNoMmio() {
        try (Vm vm = TestVms.boot(TestVms.small("gpu0", DeviceKind.GPU))) {
            Device gpu = vm.devices().get(0);
            require(gpu.setState(DeviceState.RESUMING));
            assertThat(gpu.setState(DeviceState.RUNNING).succeeded()).isFalse();
            long dmas = gpu.stats().dmaOperations();
            long stopped = gpu.stats().mmioWhileStopped();
            gpu.mmioWrite(Device.REG_DOORBELL, gpu.workloadDoorbell(new java.util.SplittableRandom(1)), MmioSource.CPU);
            assertThat(vm.awaitQuiescent()).isTrue();
            assertThat(gpu.stats().dmaOperations()).isEqualTo(dmas);
            assertThat(gpu.stats().mmioWhileStopped()).isEqualTo(stopped + 1);
            // D4: every write fails and the state stays ERROR.
            assertThat(gpu.setState(DeviceState.RUNNING).succeeded()).isFalse();
            assertThat(gpu.state()).isEqualTo(DeviceState.ERROR);
        }
    }
}
