package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.migration.TransitionStep;
import dev.ferry.device.vm.InProcessMigration;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.VmDigest;
import dev.ferry.device.vm.WorkloadConfig;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ConcurrencyTest {

    /** Holds the first DMA in flight until released; counts every DMA start after that. */
    private static final class HeldDma implements DmaObserver {
        final CountDownLatch inFlight = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        final AtomicBoolean holding = new AtomicBoolean(true);
        final AtomicInteger started = new AtomicInteger();
        final List<String> events = Collections.synchronizedList(new ArrayList<>());

        @Override
        public void started(Device initiator, long iova, int length, boolean write) {
            started.incrementAndGet();
            if (holding.compareAndSet(true, false)) {
                events.add("dma started");
                inFlight.countDown();
                try {
                    release.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                events.add("dma finished");
            }
        }
    }

    @Test
    void d11SettingNdmaReturnsOnlyAfterDmaInFlightCompletesAndNoDmaStartsAfter() throws Exception {
        HeldDma dma = new HeldDma();
        VmConfig config = TestVms.config("vm", P2pPolicy.AUTO, TestVms.small("gpu0", DeviceKind.GPU));
        try (Vm vm = Vm.boot(config, new Vm.Options(dma, 5_000))) {
            Device gpu = vm.devices().get(0);
            CountDownLatch ndmaStep = new CountDownLatch(1);
            gpu.addListener(new TransitionListener() {
                @Override
                public void step(Device device, TransitionStep step) {
                    if (step == TransitionStep.NDMA_SET) {
                        ndmaStep.countDown();
                    }
                }
            });
            SplittableRandom random = new SplittableRandom(11);
            gpu.mmioWrite(Device.REG_DOORBELL, gpu.workloadDoorbell(random), MmioSource.CPU);
            assertThat(dma.inFlight.await(10, TimeUnit.SECONDS)).isTrue();

            CompletableFuture<TransitionResult> write = CompletableFuture.supplyAsync(() -> {
                TransitionResult result = gpu.setState(DeviceState.RUNNING_NDMA);
                dma.events.add("NDMA returned");
                return result;
            });
            assertThat(ndmaStep.await(10, TimeUnit.SECONDS)).isTrue();
            // The write is inside its NDMA step and the DMA is still held: it must not have returned.
            assertThat(write).isNotDone();
            dma.release.countDown();
            require(write.get(10, TimeUnit.SECONDS));
            assertThat(dma.events).containsExactly("dma started", "dma finished", "NDMA returned");

            int startedBefore = dma.started.get();
            for (int i = 0; i < 10; i++) {
                gpu.mmioWrite(Device.REG_DOORBELL, gpu.workloadDoorbell(random), MmioSource.CPU);
            }
            assertThat(vm.awaitQuiescent()).isTrue();
            assertThat(gpu.queuedWork()).as("D11: accepted MMIO, started nothing").isEqualTo(10);
            assertThat(dma.started.get()).isEqualTo(startedBefore);

            require(gpu.setState(DeviceState.RUNNING));
            await().atMost(Duration.ofSeconds(10)).until(() -> gpu.queuedWork() == 0 && gpu.isQuiescent());
            assertThat(dma.started.get()).isGreaterThan(startedBefore);
        }
    }

    @Test
    void d12FrozenDeviceCountsPeerMmioAsMmioWhileStopped() {
        VmConfig config = TestVms.config("vm", P2pPolicy.AUTO,
                TestVms.small("gpu0", DeviceKind.GPU), TestVms.small("nic0", DeviceKind.NIC));
        try (Vm vm = Vm.boot(config)) {
            Device gpu = vm.device("gpu0").orElseThrow();
            Device nic = vm.device("nic0").orElseThrow();
            assertThat(vm.p2pActive()).isTrue();
            require(nic.setState(DeviceState.STOP_COPY));
            SplittableRandom random = new SplittableRandom(12);
            for (int i = 0; i < 5; i++) {
                gpu.mmioWrite(Device.REG_DOORBELL, gpu.p2pDoorbell(random), MmioSource.CPU);
            }
            await().atMost(Duration.ofSeconds(10)).until(() -> gpu.stats().p2pIssued() == 5);
            assertThat(nic.stats().mmioWhileStopped()).isEqualTo(5);
            assertThat(nic.stats().p2pReceived()).isZero();
            assertThat(nic.queuedWork()).isZero();
        }
    }

    @Test
    void d11GracedPeerStillTakesP2pAndNothingReachesAStoppedDevice() {
        VmConfig config = TestVms.config("vm", P2pPolicy.AUTO,
                TestVms.small("gpu0", DeviceKind.GPU), TestVms.small("nic0", DeviceKind.NIC));
        try (Vm vm = Vm.boot(config)) {
            Device gpu = vm.device("gpu0").orElseThrow();
            Device nic = vm.device("nic0").orElseThrow();
            require(nic.setState(DeviceState.RUNNING_NDMA));
            SplittableRandom random = new SplittableRandom(13);
            for (int i = 0; i < 5; i++) {
                gpu.mmioWrite(Device.REG_DOORBELL, gpu.p2pDoorbell(random), MmioSource.CPU);
            }
            await().atMost(Duration.ofSeconds(10)).until(() -> gpu.stats().p2pIssued() == 5);
            assertThat(nic.stats().p2pReceived()).isEqualTo(5);
            assertThat(nic.queuedWork()).isEqualTo(5);
            // F1 order: everyone in the grace state, then everyone stops: no stray MMIO.
            require(gpu.setState(DeviceState.RUNNING_NDMA));
            require(gpu.setState(DeviceState.STOP));
            require(nic.setState(DeviceState.STOP));
            assertThat(nic.stats().mmioWhileStopped()).isZero();
            assertThat(gpu.stats().mmioWhileStopped()).isZero();
        }
    }

    @Test
    void wholeVmSaveAndResumeUnderRunningWorkloadGivesEqualDigests() {
        checkLiveSave(P2pPolicy.AUTO, 200, List.of(
                DeviceConfig.of("nic0", DeviceKind.NIC),
                DeviceConfig.of("gpu0", DeviceKind.GPU).withMemoryBytes(4L << 20),
                DeviceConfig.of("serial0", DeviceKind.SERIAL)));
        checkLiveSave(P2pPolicy.AUTO, 0, List.of(
                DeviceConfig.of("nic0", DeviceKind.NIC),
                DeviceConfig.of("gpu0", DeviceKind.GPU).withMemoryBytes(4L << 20),
                DeviceConfig.of("serial0", DeviceKind.SERIAL),
                DeviceConfig.of("crypto0", DeviceKind.CRYPTO)));
    }

    private static void checkLiveSave(P2pPolicy p2p, long p2pOps, List<DeviceConfig> devices) {
        WorkloadConfig workload = new WorkloadConfig(16L << 20, p2pOps, 2_000, 99);
        VmConfig config = new VmConfig("vm", 32L << 20, 2, InitialMemory.RANDOM, workload, p2p, devices);
        try (Vm source = Vm.boot(config); Vm target = Vm.incoming(config, sourceSlots(config), Vm.Options.DEFAULT)) {
            source.startVcpus();
            await().atMost(Duration.ofSeconds(20)).until(() -> source.workload().pagesDirtied() > 500
                    && source.devices().stream().allMatch(d -> d.stats().operations() > 3));
            InProcessMigration.Report report = InProcessMigration.migrate(source, target, 3);
            assertThat(report.iterations()).isEqualTo(3);

            // Both paused: the source frozen in stop-and-copy, the target loaded and waiting at R3.
            VmDigest before = source.digest();
            VmDigest after = target.digest();
            assertThat(after).isEqualTo(before);
            for (Device device : source.devices()) {
                assertThat(device.stats().mmioWhileStopped()).as("F2 on %s", device.id()).isZero();
            }
            if (p2pOps > 0) {
                assertThat(source.device("gpu0").orElseThrow().stats().p2pIssued()).isPositive();
            }

            InProcessMigration.start(target, true);
            await().atMost(Duration.ofSeconds(20)).until(() -> target.workload().pagesDirtied() > 100);
            target.pause();
            assertThat(target.digest()).isEqualTo(target.digest());
            for (Device device : target.devices()) {
                assertThat(device.stats().mmioWhileStopped()).as("F2 on target %s", device.id()).isZero();
            }
        }
    }

    private static java.util.Map<String, Integer> sourceSlots(VmConfig config) {
        java.util.Map<String, Integer> slots = new java.util.HashMap<>();
        for (int i = 0; i < config.devices().size(); i++) {
            slots.put(config.devices().get(i).id(), i);
        }
        return slots;
    }
}
