package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.InitialData;
import dev.ferry.device.migration.WindowWrite;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * W8: during pre-copy a GPU that re-partitions its memory makes its initial data grow again, and the new
 * initial data streams like the first; {@link Device#initialData()} says which round it is and where it
 * ends, and the destination's {@link Device#loadedBytes()} shows when it processed it (F7's contract).
 *
 * <p>The VMs here keep their vCPUs parked, so no workload thread drives the device's own work: the tests
 * drive it with {@link Device#advanceOwnWork} and know exactly when a re-partition begins.
 */
class ReinitTest {
    private static final long REINIT_MS = 50;
    private static final long REINIT_NANOS = REINIT_MS * 1_000_000L;
    private static final long SEED = 8080L;

    /** 1 MiB in 16 pieces of 64 KiB, so that a re-partition takes several steps and skips unallocated pieces. */
    private static DeviceConfig gpu() {
        return DeviceConfig.of("gpu0", DeviceKind.GPU).withMemoryBytes(1 << 20).withReinitMs(REINIT_MS);
    }

    private static void dirty(Vm vm, Device device, int round) {
        TestVms.work(vm, device, 40, SEED + round);
        device.ownWork(30, new SplittableRandom(SEED * 7 + round));
    }

    /** Runs a whole re-partition: the first call begins it (W8), the rest finish it. */
    private static int repartition(Device gpu) {
        int steps = 0;
        boolean more = gpu.advanceOwnWork(REINIT_NANOS);
        steps++;
        while (more) {
            more = gpu.advanceOwnWork(0);
            steps++;
            assertThat(steps).as("a re-partition ends").isLessThan(10_000);
        }
        return steps;
    }

    @Test
    void theOptionIsAGpusAndChangesNeitherDefaultsNorTheStreamsConfiguration() {
        DeviceConfig plain = DeviceConfig.of("gpu0", DeviceKind.GPU);
        assertThat(plain.reinitMs()).isZero();
        assertThat(new DeviceConfig("n", DeviceKind.NIC, true, false, false, 4096).reinitMs()).isZero();
        assertThat(plain.withReinitMs(100).reinitMs()).isEqualTo(100);
        assertThat(plain.withReinitMs(100).withMemoryBytes(8192).withPri(true).reinitMs()).isEqualTo(100);
        assertThat(plain.withReinitMs(100).canonicalBytes()).isEqualTo(plain.canonicalBytes());
        assertThatThrownBy(() -> DeviceConfig.of("nic0", DeviceKind.NIC).withReinitMs(10))
                .isInstanceOf(DeviceModelException.class).hasMessageContaining("a nic does not re-initialise");
        assertThatThrownBy(() -> plain.withReinitMs(-1)).isInstanceOf(DeviceModelException.class);
        assertThatThrownBy(() -> plain.withReinitMs(DeviceConfig.MAX_REINIT_MS + 1)).isInstanceOf(DeviceModelException.class);
    }

    @Test
    void w8AReinitialisationMakesTheInitialDataGrowAgainAndStreamLikeTheFirst() {
        try (Vm source = TestVms.boot(gpu()); Vm target = TestVms.boot(gpu())) {
            Device gpu = source.devices().get(0);
            dirty(source, gpu, 1);
            assertThat(gpu.initialData()).as("no save session").isEqualTo(InitialData.NONE);
            require(gpu.setState(DeviceState.PRE_COPY));
            InitialData first = gpu.initialData();
            assertThat(first.generation()).isZero();
            assertThat(first.complete()).isFalse();
            assertThat(first.endOffset()).isEqualTo(gpu.initialBytes());

            ByteArrayOutputStream stream = new ByteArrayOutputStream();
            byte[] bulk = TestVms.drain(gpu, 10_000);
            stream.write(bulk, 0, bulk.length);
            assertThat(gpu.initialData()).isEqualTo(new InitialData(0, bulk.length, true));
            assertThat(gpu.initialBytes()).isZero();

            // Part of a dirty page, then the re-partition begins mid-record.
            dirty(source, gpu, 2);
            ByteBuffer part = ByteBuffer.allocate(100);
            gpu.readWindow(part);
            stream.write(part.array(), 0, part.position());
            long reinits = gpu.stats().reinits();
            assertThat(gpu.advanceOwnWork(REINIT_NANOS / 2)).as("not yet due").isFalse();
            assertThat(gpu.stats().reinits()).isEqualTo(reinits);
            boolean more = gpu.advanceOwnWork(REINIT_NANOS / 2);
            assertThat(gpu.stats().reinits()).isEqualTo(reinits + 1);
            InitialData second = gpu.initialData();
            assertThat(second.generation()).isEqualTo(1);
            assertThat(second.complete()).isFalse();
            assertThat(gpu.initialBytes()).as("the bulk state is initial data again").isGreaterThan(bulk.length / 2);
            assertThat(second.endOffset()).isEqualTo(stream.size() + gpu.initialBytes());
            while (more) {
                more = gpu.advanceOwnWork(0);
            }
            assertThat(gpu.initialData().endOffset()).as("the whole round is known before it is read").isEqualTo(second.endOffset());

            byte[] round = TestVms.drain(gpu, 7_000);
            stream.write(round, 0, round.length);
            InitialData read = gpu.initialData();
            assertThat(read.generation()).isEqualTo(1);
            assertThat(read.complete()).isTrue();
            assertThat(read.endOffset()).isEqualTo(second.endOffset()).isLessThanOrEqualTo(stream.size());

            // The destination has processed the new round once its loaded bytes reach the end offset (F7).
            Device twin = target.devices().get(0);
            require(twin.setState(DeviceState.RESUMING));
            byte[] sent = stream.toByteArray();
            WindowWrite upTo = twin.writeWindow(ByteBuffer.wrap(sent, 0, (int) read.endOffset() - 1));
            assertThat(upTo.loadedBytes()).isLessThan(read.endOffset());
            WindowWrite all = twin.writeWindow(ByteBuffer.wrap(sent, (int) read.endOffset() - 1, sent.length - (int) read.endOffset() + 1));
            assertThat(all.loadedBytes()).isGreaterThanOrEqualTo(read.endOffset());

            long predicted = gpu.stopCopyBytes();
            byte[] last = TestVms.saveWhole(gpu);
            assertThat((long) last.length).as("W9 after a re-initialisation").isEqualTo(predicted);
            assertThat(twin.writeWindow(ByteBuffer.wrap(last)).accepted()).isTrue();
            require(twin.setState(DeviceState.STOP));
            assertThat(twin.digest()).isEqualTo(gpu.digest());
        }
    }

    @Test
    void w8ARepartitionRewritesTheMemoryAndAStaleBulkStateWouldNotDo() {
        try (Vm vm = TestVms.boot(gpu()); Vm stale = TestVms.boot(gpu())) {
            Device gpu = vm.devices().get(0);
            dirty(vm, gpu, 1);
            byte[] before = TestVms.saveWhole(gpu);
            byte[] beforeDigest = gpu.digest();
            require(gpu.setState(DeviceState.RUNNING));
            assertThat(repartition(gpu)).as("a step per 64 allocated pages").isGreaterThan(1);
            assertThat(gpu.digest()).isNotEqualTo(beforeDigest);
            Device old = stale.devices().get(0);
            require(TestVms.load(old, before, 4096, DeviceState.STOP));
            assertThat(old.digest()).isEqualTo(beforeDigest).isNotEqualTo(gpu.digest());
        }
    }

    @Test
    void w8ARepartitionInterruptedByTheFreezeGoesOnInTheCopy() {
        try (Vm source = TestVms.boot(gpu()); Vm target = TestVms.boot(gpu())) {
            Device gpu = source.devices().get(0);
            dirty(source, gpu, 1);
            require(gpu.setState(DeviceState.PRE_COPY));
            ByteArrayOutputStream stream = new ByteArrayOutputStream();
            byte[] bulk = TestVms.drain(gpu, 10_000);
            stream.write(bulk, 0, bulk.length);
            assertThat(gpu.advanceOwnWork(REINIT_NANOS)).as("one step of several").isTrue();
            byte[] rest = TestVms.saveWhole(gpu);
            stream.write(rest, 0, rest.length);
            // D12: frozen, the re-partition stands still.
            assertThat(gpu.advanceOwnWork(REINIT_NANOS)).isFalse();
            Device twin = target.devices().get(0);
            require(TestVms.load(twin, stream.toByteArray(), 5000, DeviceState.STOP));
            assertThat(twin.digest()).isEqualTo(gpu.digest());

            require(gpu.setState(DeviceState.RUNNING));
            require(twin.setState(DeviceState.RUNNING));
            while (gpu.advanceOwnWork(0)) {
                assertThat(twin.advanceOwnWork(0)).isTrue();
            }
            assertThat(twin.advanceOwnWork(0)).isFalse();
            assertThat(twin.digest()).as("both finished the same re-partition").isEqualTo(gpu.digest());
        }
    }

    @Test
    void w8ADeviceWithoutLoggingHasNoInitialDataToWaitFor() {
        try (Vm vm = TestVms.boot(gpu().withPreCopy(false))) {
            Device gpu = vm.devices().get(0);
            dirty(vm, gpu, 1);
            require(gpu.setState(DeviceState.PRE_COPY));
            repartition(gpu);
            assertThat(gpu.initialData()).isEqualTo(InitialData.NONE);
            assertThat(gpu.pendingBytes()).isZero();
        }
    }

    @Test
    void w8TheWorkloadRepartitionsWhileTheVcpusRunAndNotWhilePaused() {
        VmConfig config = new VmConfig("vm", TestVms.MEMORY, 1, InitialMemory.ZERO, WorkloadConfig.IDLE, P2pPolicy.AUTO,
                List.of(gpu().withReinitMs(10)));
        try (Vm vm = Vm.boot(config)) {
            Device gpu = vm.devices().get(0);
            dirty(vm, gpu, 1);
            require(gpu.setState(DeviceState.PRE_COPY));
            TestVms.drain(gpu, 64 * 1024);
            vm.startVcpus();
            await().atMost(Duration.ofSeconds(20)).until(() -> gpu.initialData().generation() >= 2);
            vm.pause();
            long reinits = gpu.stats().reinits();
            byte[] paused = gpu.digest();
            await().during(Duration.ofMillis(100)).atMost(Duration.ofSeconds(2)).until(() -> gpu.stats().reinits() == reinits);
            assertThat(gpu.digest()).isEqualTo(paused);
        }
    }
}
