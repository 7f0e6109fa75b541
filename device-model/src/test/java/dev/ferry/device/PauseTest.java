package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionFailure;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.VmDigest;
import dev.ferry.device.vm.WorkloadConfig;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** M5, and why the vIOMMU grace state (S3) keeps vCPUs running while NDMA drains page requests. */
class PauseTest {

    private static VmConfig busy(DeviceConfig... devices) {
        return new VmConfig("vm", 16L << 20, 2, InitialMemory.ZERO, new WorkloadConfig(8L << 20, 100, 3_000, 5),
                P2pPolicy.AUTO, List.of(devices));
    }

    @Test
    void m5PausedVmIsIdleAndItsDigestIsStable() {
        try (Vm vm = Vm.boot(busy(TestVms.small("gpu0", DeviceKind.GPU), TestVms.small("nic0", DeviceKind.NIC),
                TestVms.small("serial0", DeviceKind.SERIAL).withPri(true)))) {
            vm.startVcpus();
            await().atMost(Duration.ofSeconds(20)).until(() -> vm.workload().pagesDirtied() > 200
                    && vm.device("nic0").orElseThrow().stats().operations() > 5);
            assertThatThrownBy(vm::digest).isInstanceOf(DeviceModelException.class)
                    .extracting(e -> ((DeviceModelException) e).code()).isEqualTo(DeviceModelException.NOT_IDLE);
            vm.pause();
            assertThat(vm.vcpusRunning()).isFalse();
            for (Device device : vm.devices()) {
                assertThat(device.isQuiescent()).isTrue();
                assertThat(device.queuedWork()).isZero();
            }
            long dirtied = vm.workload().pagesDirtied();
            VmDigest first = vm.digest();
            VmDigest second = vm.digest();
            assertThat(second).isEqualTo(first);
            assertThat(vm.workload().pagesDirtied()).isEqualTo(dirtied);
            vm.resume();
            await().atMost(Duration.ofSeconds(20)).until(() -> vm.workload().pagesDirtied() > dirtied);
        }
    }

    @Test
    void pageRequestsCompleteWhileVcpusRunSoNdmaDrainsThem() {
        try (Vm vm = Vm.boot(busy(TestVms.small("gpu0", DeviceKind.GPU).withPri(true)))) {
            Device gpu = vm.devices().get(0);
            vm.startVcpus();
            await().atMost(Duration.ofSeconds(20)).until(() -> gpu.stats().snapshot().get("pageRequests") > 10);
            // S3: NDMA while the vCPUs still run; any DMA waiting on a page request completes.
            require(gpu.setState(DeviceState.RUNNING_NDMA));
            assertThat(vm.workload().pageRequestsServed()).isPositive();
            require(gpu.setState(DeviceState.RUNNING));
        }
    }

    @Test
    void ndmaAfterVcpusStoppedCannotDrainWorkWaitingForAPageRequest() {
        VmConfig config = new VmConfig("vm", 16L << 20, 1, InitialMemory.ZERO, WorkloadConfig.IDLE, P2pPolicy.AUTO,
                List.of(TestVms.small("gpu0", DeviceKind.GPU).withPri(true)));
        try (Vm vm = Vm.boot(config, new Vm.Options(DmaObserver.NONE, 60_000))) {
            Device gpu = vm.devices().get(0);
            gpu.setQuiesceTimeout(200, TimeUnit.MILLISECONDS);
            // vCPUs parked: a compute job's page request can never complete.
            gpu.mmioWrite(Device.REG_DOORBELL, gpu.workloadDoorbell(new SplittableRandom(3)), MmioSource.CPU);
            await().atMost(Duration.ofSeconds(10)).until(() -> gpu.stats().snapshot().get("pageRequests") == 1);
            TransitionResult result = gpu.setState(DeviceState.RUNNING_NDMA);
            assertThat(result).isInstanceOf(TransitionResult.Failed.class);
            assertThat(((TransitionResult.Failed) result).failure()).isEqualTo(TransitionFailure.QUIESCE_TIMEOUT);
            // Running a vCPU completes the request; the device can then be reset and used again.
            vm.startVcpus();
            assertThat(gpu.reset()).isEqualTo(DeviceState.RUNNING);
        }
    }
}
