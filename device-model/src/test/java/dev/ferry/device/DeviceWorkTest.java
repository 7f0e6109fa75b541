package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.VmDigest;
import dev.ferry.device.vm.WorkloadConfig;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The devices' own work (API.md {@code deviceDirtyBytesPerSecond}): every device writes its own memory
 * while RUNNING and the vCPUs run, NDMA or not (it is not DMA), never while stopped (D12), marking its
 * internal dirty log (W4); slowed by the device-work throttle (F9); seeded.
 */
class DeviceWorkTest {
    private static final Duration WAIT = Duration.ofSeconds(20);

    private static Vm boot(long deviceBytesPerSecond, DeviceConfig... devices) {
        WorkloadConfig workload = WorkloadConfig.IDLE.withDeviceDirtyBytesPerSecond(deviceBytesPerSecond);
        return Vm.boot(new VmConfig("vm", TestVms.MEMORY, 1, InitialMemory.ZERO, workload, P2pPolicy.AUTO, List.of(devices)));
    }

    @Test
    void theDefaultIsNoDeviceWorkAndTheOldConstructorsKeepIt() {
        assertThat(WorkloadConfig.IDLE.deviceDirtyBytesPerSecond()).isZero();
        assertThat(WorkloadConfig.of(1 << 20, 0, 1).deviceDirtyBytesPerSecond()).isZero();
        assertThat(new WorkloadConfig(1, 2, 3, 4).deviceDirtyBytesPerSecond()).isZero();
        WorkloadConfig busy = WorkloadConfig.of(1 << 20, 5, 7).withDeviceDirtyBytesPerSecond(64L << 20);
        assertThat(busy.deviceDirtyBytesPerSecond()).isEqualTo(64L << 20);
        assertThat(busy.dirtyBytesPerSecond()).isEqualTo(1 << 20);
        assertThat(busy.seed()).isEqualTo(7);
        assertThat(WorkloadConfig.IDLE.withDeviceDirtyBytesPerSecond(1).idle()).isFalse();
        assertThatThrownBy(() -> WorkloadConfig.IDLE.withDeviceDirtyBytesPerSecond(-1))
                .isInstanceOf(DeviceModelException.class);
    }

    @ParameterizedTest
    @MethodSource("dev.ferry.device.TestVms#kinds")
    void everyKindWritesItsOwnMemoryWhileRunning(DeviceKind kind) {
        try (Vm vm = boot(8L << 20, TestVms.small("dev0", kind))) {
            Device device = vm.devices().get(0);
            byte[] before = device.digest();
            long operations = device.stats().operations();
            vm.startVcpus();
            await().atMost(WAIT).until(() -> device.stats().ownWrites() >= 50);
            vm.pause();
            assertThat(device.digest()).as("its memory changed").isNotEqualTo(before);
            assertThat(device.stats().operations()).as("no MMIO was involved").isEqualTo(operations);
        }
    }

    @Test
    void w4OwnWritesMarkTheInternalDirtyLogDuringPreCopy() {
        try (Vm vm = boot(8L << 20, TestVms.small("gpu0", DeviceKind.GPU))) {
            Device gpu = vm.devices().get(0);
            require(gpu.setState(DeviceState.PRE_COPY));
            TestVms.drain(gpu, 64 * 1024);
            assertThat(gpu.pendingBytes()).isZero();
            vm.startVcpus();
            await().atMost(WAIT).until(() -> gpu.dirtyBytes() > 0);
        }
    }

    @Test
    void d12NoOwnWorkWhileStoppedAndNdmaDoesNotStopIt() {
        try (Vm vm = boot(16L << 20, TestVms.small("gpu0", DeviceKind.GPU), TestVms.small("nic0", DeviceKind.NIC),
                TestVms.small("ser0", DeviceKind.SERIAL))) {
            Device gpu = vm.device("gpu0").orElseThrow();
            Device nic = vm.device("nic0").orElseThrow();
            Device serial = vm.device("ser0").orElseThrow();
            require(gpu.setState(DeviceState.STOP));
            require(nic.setState(DeviceState.RUNNING_NDMA));
            byte[] frozen = gpu.digest();
            vm.startVcpus();
            long serialStart = serial.stats().ownWrites();
            // Progress of the work on the other devices shows that it ran, and the stopped device took none.
            await().atMost(WAIT).until(() -> serial.stats().ownWrites() >= serialStart + 200);
            assertThat(gpu.stats().ownWrites()).isZero();
            assertThat(nic.stats().ownWrites()).as("NDMA stops DMA, not the device's own work").isPositive();
            assertThat(gpu.digest()).isEqualTo(frozen);
            // Stopped, the gate is shut at the call itself.
            assertThat(gpu.ownWork(10, new SplittableRandom(1))).isZero();
            assertThat(nic.ownWork(10, new SplittableRandom(1))).isEqualTo(10);
        }
    }

    @Test
    void d12OnceAFreezeReturnsNoOwnWriteLandsInTheStopAndCopyStream() {
        try (Vm source = boot(64L << 20, TestVms.small("gpu0", DeviceKind.GPU).withMemoryBytes(256 * 1024));
             Vm target = boot(0, TestVms.small("gpu0", DeviceKind.GPU).withMemoryBytes(256 * 1024))) {
            Device gpu = source.devices().get(0);
            source.startVcpus();
            require(gpu.setState(DeviceState.PRE_COPY));
            await().atMost(WAIT).until(() -> gpu.stats().ownWrites() >= 100);
            byte[] stream = TestVms.saveWhole(gpu);
            long writes = gpu.stats().ownWrites();
            byte[] frozen = gpu.digest();
            Device other = target.devices().get(0);
            require(TestVms.load(other, stream, 8192, DeviceState.STOP));
            // The vCPUs still run: the work goes on being offered, and the frozen device takes none of it.
            assertThat(gpu.digest()).isEqualTo(frozen);
            assertThat(gpu.stats().ownWrites()).isEqualTo(writes);
            assertThat(other.digest()).isEqualTo(frozen);
        }
    }

    @Test
    void m5APausedVmStaysStill() {
        try (Vm vm = boot(32L << 20, TestVms.small("gpu0", DeviceKind.GPU), TestVms.small("nic0", DeviceKind.NIC))) {
            vm.startVcpus();
            await().atMost(WAIT).until(() -> vm.workload().deviceWrites() >= 100);
            vm.pause();
            long writes = vm.workload().deviceWrites();
            VmDigest paused = vm.digest();
            await().during(Duration.ofMillis(200)).atMost(Duration.ofSeconds(2))
                    .until(() -> vm.workload().deviceWrites() == writes);
            assertThat(vm.digest()).isEqualTo(paused);
        }
    }

    @Test
    void f9TheThrottleSlowsTheDevicesOwnWork() {
        try (Vm vm = boot(16L << 20, TestVms.small("gpu0", DeviceKind.GPU))) {
            assertThatThrownBy(() -> vm.setDeviceWorkThrottle(100)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> vm.setDeviceWorkThrottle(-1)).isInstanceOf(IllegalArgumentException.class);
            Device gpu = vm.devices().get(0);
            vm.startVcpus();
            long fullNanos = nanosFor(gpu, 400);
            vm.setDeviceWorkThrottle(90);
            assertThat(vm.deviceWorkThrottle()).isEqualTo(90);
            long throttledNanos = nanosFor(gpu, 400);
            // 90% slower in theory: ten times as long. A third of that leaves room for a busy machine.
            assertThat(throttledNanos).isGreaterThan(3 * fullNanos);
            vm.setDeviceWorkThrottle(0);
        }
    }

    private static long nanosFor(Device device, long writes) {
        long start = System.nanoTime();
        long target = device.stats().ownWrites() + writes;
        await().atMost(WAIT).until(() -> device.stats().ownWrites() >= target);
        return System.nanoTime() - start;
    }

    @Test
    void theSameSeedWritesTheSameMemory() {
        try (Vm a = boot(0, TestVms.small("gpu0", DeviceKind.GPU)); Vm b = boot(0, TestVms.small("gpu0", DeviceKind.GPU))) {
            Device first = a.devices().get(0);
            Device second = b.devices().get(0);
            SplittableRandom one = new SplittableRandom(42);
            SplittableRandom two = new SplittableRandom(42);
            // Batches of different sizes: only the number of writes matters.
            first.ownWork(30, one);
            first.ownWork(70, one);
            second.ownWork(100, two);
            assertThat(first.digest()).isEqualTo(second.digest());
        }
    }
}
