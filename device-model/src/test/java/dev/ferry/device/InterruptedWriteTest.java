package dev.ferry.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionFailure;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * D2 with an interrupt: a state write that waits for work in flight (NDMA set, D11; !RUNNING, D12)
 * and whose caller is interrupted (a cancelled migration, SPEC F12) is abandoned before anything
 * irreversible: it fails with the state unchanged, and the device goes on working.
 */
class InterruptedWriteTest {
    /** Transmit: the NIC reads a packet by DMA, and with {@code pri} a vCPU must first serve the page request. */
    private static final long TRANSMIT = 2L << 56;

    @Test
    void aWriteInterruptedWhileItWaitsForDmaInFlightFailsWithTheStateUnchanged() throws Exception {
        VmConfig config = new VmConfig("d2", 4L << 20, 1, InitialMemory.ZERO, WorkloadConfig.IDLE, P2pPolicy.AUTO,
                List.of(DeviceConfig.of("nic0", DeviceKind.NIC).withPri(true)));
        try (Vm vm = Vm.boot(config)) {
            Device nic = vm.device("nic0").orElseThrow();
            // The vCPUs are parked, so the page request stays unserved and the DMA stays in flight.
            nic.mmioWrite(Device.REG_DOORBELL, TRANSMIT, MmioSource.CPU);
            await().atMost(Duration.ofSeconds(5)).until(() -> nic.queuedWork() == 0 && !nic.isQuiescent());

            Thread[] writer = new Thread[1];
            CompletableFuture<TransitionResult> write = CompletableFuture.supplyAsync(() -> {
                writer[0] = Thread.currentThread();
                return nic.setState(DeviceState.RUNNING_NDMA);
            });
            await().atMost(Duration.ofSeconds(5)).until(() -> writer[0] != null && writer[0].getState() == Thread.State.TIMED_WAITING);
            writer[0].interrupt();
            TransitionResult result = write.get(5, TimeUnit.SECONDS);

            assertThat(result.succeeded()).isFalse();
            assertThat(result).isInstanceOfSatisfying(TransitionResult.Rejected.class,
                    rejected -> assertThat(rejected.failure()).isEqualTo(TransitionFailure.INTERRUPTED));
            assertThat(nic.state()).isEqualTo(DeviceState.RUNNING);
            // Not NDMA: once its page request is served the device finishes the DMA and takes new work.
            vm.startVcpus();
            await().atMost(Duration.ofSeconds(10)).until(nic::isQuiescent);
            long operations = nic.stats().snapshot().get("operations");
            nic.mmioWrite(Device.REG_DOORBELL, TRANSMIT, MmioSource.CPU);
            await().atMost(Duration.ofSeconds(10)).until(() -> nic.stats().snapshot().get("operations") > operations);
        }
    }
}
