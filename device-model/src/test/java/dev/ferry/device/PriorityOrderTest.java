package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static dev.ferry.device.migration.TransitionStep.CAPTURE;
import static dev.ferry.device.migration.TransitionStep.FREEZE;
import static dev.ferry.device.migration.TransitionStep.LOAD;
import static dev.ferry.device.migration.TransitionStep.NDMA_CLEAR;
import static dev.ferry.device.migration.TransitionStep.NDMA_SET;
import static dev.ferry.device.migration.TransitionStep.PRE_COPY_START;
import static dev.ferry.device.migration.TransitionStep.RESTART;
import static dev.ferry.device.migration.TransitionStep.RESUME_OPEN;
import static dev.ferry.device.migration.TransitionStep.SAVE_END;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionStep;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** D10: a write that changes several bits runs its groups in the priority order, observably. */
class PriorityOrderTest {

    private static final class Steps implements TransitionListener {
        final List<TransitionStep> steps = Collections.synchronizedList(new ArrayList<>());

        @Override
        public void step(Device device, TransitionStep step) {
            steps.add(step);
        }

        List<TransitionStep> take() {
            synchronized (steps) {
                List<TransitionStep> copy = List.copyOf(steps);
                steps.clear();
                return copy;
            }
        }
    }

    @Test
    void d10GroupsRunInPriorityOrder() {
        try (Vm vm = TestVms.boot(TestVms.small("gpu0", DeviceKind.GPU))) {
            Device gpu = vm.devices().get(0);
            byte[] stream;
            try (Vm twin = TestVms.boot(gpu.config())) {
                stream = TestVms.saveWhole(twin.devices().get(0));
            }
            Steps steps = new Steps();
            gpu.addListener(steps);

            assertSteps(gpu, steps, 0, 9, List.of(FREEZE), List.of(NDMA_SET, RESTART));
            assertSteps(gpu, steps, 1, 2, List.of(), List.of(FREEZE, CAPTURE));
            assertSteps(gpu, steps, 3, 2, List.of(PRE_COPY_START), List.of(FREEZE, CAPTURE));
            assertSteps(gpu, steps, 1, 11, List.of(), List.of(NDMA_SET, PRE_COPY_START));
            assertSteps(gpu, steps, 11, 1, List.of(NDMA_SET, PRE_COPY_START), List.of(SAVE_END, NDMA_CLEAR));
            // D9: clearing SAVING in stop-and-copy aborts it and restarts the device.
            assertSteps(gpu, steps, 2, 1, List.of(FREEZE, CAPTURE), List.of(SAVE_END, RESTART));
            // D7: entering RESUMING discards an open save session.
            assertSteps(gpu, steps, 2, 4, List.of(FREEZE, CAPTURE), List.of(SAVE_END, RESUME_OPEN));
            // R3: NDMA is set before the device loads and restarts.
            gpu.reset();
            require(gpu.setState(DeviceState.RESUMING));
            gpu.writeWindow(ByteBuffer.wrap(stream));
            steps.take();
            require(gpu.setState(DeviceState.RUNNING_NDMA));
            assertThat(steps.take()).containsExactly(NDMA_SET, LOAD, RESTART);
            // 12 -> 3: load, restart, pre-copy, NDMA cleared last.
            gpu.reset();
            require(gpu.setState(DeviceState.of(12)));
            gpu.writeWindow(ByteBuffer.wrap(stream));
            steps.take();
            require(gpu.setState(DeviceState.PRE_COPY));
            assertThat(steps.take()).containsExactly(LOAD, RESTART, PRE_COPY_START, NDMA_CLEAR);
        }
    }

    private static void assertSteps(Device device, Steps steps, int start, int requested,
                                    List<TransitionStep> toReachStart, List<TransitionStep> expected) {
        device.reset();
        steps.take();
        if (start != 1) {
            require(device.setState(DeviceState.of(start)));
        }
        assertThat(steps.take()).as("steps reaching %d", start).isEqualTo(toReachStart);
        require(device.setState(DeviceState.of(requested)));
        assertThat(steps.take()).as("steps of %d -> %d", start, requested).isEqualTo(expected);
    }

    @Test
    void d10StopToGraceStateNeverStartsDmaBetweenRunningAndNdma() {
        AtomicInteger dmas = new AtomicInteger();
        DmaObserver counter = new DmaObserver() {
            @Override
            public void started(Device initiator, long iova, int length, boolean write) {
                dmas.incrementAndGet();
            }
        };
        VmConfig config = new VmConfig("vm", TestVms.MEMORY, 1, InitialMemory.ZERO, WorkloadConfig.IDLE,
                dev.ferry.device.P2pPolicy.AUTO, List.of(TestVms.small("gpu0", DeviceKind.GPU)));
        try (Vm vm = Vm.boot(config, new Vm.Options(counter, 5_000))) {
            Device gpu = vm.devices().get(0);
            // Work queued while NDMA holds the engine, then the device stops with that work queued.
            require(gpu.setState(DeviceState.RUNNING_NDMA));
            SplittableRandom random = new SplittableRandom(7);
            for (int i = 0; i < 20; i++) {
                gpu.mmioWrite(Device.REG_DOORBELL, gpu.workloadDoorbell(random), MmioSource.CPU);
            }
            require(gpu.setState(DeviceState.STOP));
            assertThat(gpu.queuedWork()).isEqualTo(20);
            int before = dmas.get();

            // STOP -> NDMA|RUNNING: NDMA is set before RUNNING, so the queued work cannot start.
            require(gpu.setState(DeviceState.RUNNING_NDMA));
            assertThat(vm.awaitQuiescent()).isTrue();
            assertThat(dmas.get()).isEqualTo(before);
            assertThat(gpu.queuedWork()).isEqualTo(20);

            // Clearing NDMA lets it run.
            require(gpu.setState(DeviceState.RUNNING));
            await().atMost(Duration.ofSeconds(10)).until(() -> gpu.queuedWork() == 0 && gpu.isQuiescent());
            assertThat(dmas.get()).isGreaterThan(before);
        }
    }
}
