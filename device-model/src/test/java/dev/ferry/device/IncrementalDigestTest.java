package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.ferry.device.memory.GuestMemory;
import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.vm.IncrementalDigest;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.InProcessMigration;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.VerifyDigest;
import dev.ferry.device.vm.WorkloadConfig;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The verify digest maintained incrementally (DESIGN: Digest): equal to one computed from scratch after
 * seeded random dirtying by every write path (guest writes, DMA, device memory writes, loads, zeroing,
 * device resets), equal for a VM and its migrated copy, changed by a one-byte change anywhere, and at the
 * frozen point it hashes only what changed since the last refresh.
 */
class IncrementalDigestTest {
    private static final long SEED = 31337L;
    private static final long MEMORY = 8L << 20;

    private static VmConfig config(String id, WorkloadConfig workload) {
        return new VmConfig(id, MEMORY, 2, InitialMemory.RANDOM, workload, P2pPolicy.AUTO, List.of(
                DeviceConfig.of("gpu0", DeviceKind.GPU).withMemoryBytes(1 << 20),
                TestVms.small("nic0", DeviceKind.NIC),
                TestVms.small("nvme0", DeviceKind.NVME),
                TestVms.small("ser0", DeviceKind.SERIAL)));
    }

    /** What a digest computed from nothing says now. */
    private static VerifyDigest fromScratch(Vm vm) {
        try (IncrementalDigest fresh = vm.openVerifyDigest()) {
            return fresh.digest().digest();
        }
    }

    @Test
    void equalsADigestFromScratchAfterSeededRandomDirtyingOnEveryWritePath() {
        try (Vm vm = Vm.boot(config("vm", WorkloadConfig.IDLE)); IncrementalDigest digest = vm.openVerifyDigest()) {
            SplittableRandom random = new SplittableRandom(SEED);
            GuestMemory memory = vm.memory();
            List<Device> devices = vm.devices();
            ByteBuffer page = ByteBuffer.allocateDirect(PageGeometry.PAGE_SIZE);
            for (int round = 0; round < 300; round++) {
                Device device = devices.get(random.nextInt(devices.size()));
                switch (random.nextInt(8)) {
                    case 0 -> {
                        byte[] bytes = new byte[1 + random.nextInt(200)];
                        random.nextBytes(bytes);
                        memory.vcpuWrite(random.nextLong(MEMORY - bytes.length), bytes, 0, bytes.length);
                    }
                    case 1 -> memory.vcpuWriteLong(random.nextLong(MEMORY / 8) * 8, random.nextLong());
                    case 2 -> TestVms.work(vm, device, 1 + random.nextInt(4), random.nextLong()); // DMA and device memory
                    case 3 -> device.ownWork(1 + random.nextInt(20), random.split());
                    case 4 -> {
                        byte[] bytes = new byte[PageGeometry.PAGE_SIZE];
                        random.nextBytes(bytes);
                        page.clear();
                        page.put(bytes).flip();
                        memory.loadPage(random.nextLong(memory.pages()), page);
                    }
                    case 5 -> memory.loadZeroPage(random.nextLong(memory.pages()));
                    case 6 -> {
                        byte[] bytes = new byte[1 + random.nextInt(64)];
                        random.nextBytes(bytes);
                        device.writeDeviceMemory(random.nextLong(device.deviceMemoryBytes() - bytes.length), bytes, 0, bytes.length);
                    }
                    default -> {
                        if (random.nextInt(10) == 0) {
                            vm.resetDevice(device.id()); // device memory cleared, registers reset, ring programmed
                            vm.awaitQuiescent();
                        }
                    }
                }
                if (random.nextInt(7) == 0) {
                    digest.refresh();
                }
            }
            IncrementalDigest.Result result = digest.digest();
            assertThat(result.digest()).isEqualTo(fromScratch(vm));
        }
    }

    @Test
    void equalForAVmAndItsMigratedCopyWhileTheSourceWorkedAndRefreshedInTheBackground() throws Exception {
        WorkloadConfig busy = WorkloadConfig.of(4L << 20, 50, SEED).withDeviceDirtyBytesPerSecond(2L << 20);
        VmConfig config = config("src", busy);
        try (Vm source = Vm.boot(config);
             Vm target = Vm.incoming(config.withId("dst"), slotsOf(config), Vm.Options.DEFAULT);
             IncrementalDigest sourceDigest = source.openVerifyDigest();
             IncrementalDigest targetDigest = target.openVerifyDigest()) {
            source.startVcpus();
            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong refreshes = new AtomicLong();
            CompletableFuture<Void> background = CompletableFuture.runAsync(() -> {
                for (int i = 0; i < 100_000 && !stop.get(); i++) {
                    sourceDigest.refresh();
                    refreshes.incrementAndGet();
                }
            });
            await().atMost(Duration.ofSeconds(20)).until(() -> refreshes.get() >= 20 && source.workload().deviceWrites() > 100);
            InProcessMigration.migrate(source, target, 2);
            stop.set(true);
            background.get();
            VerifyDigest atSource = sourceDigest.digest().digest();
            VerifyDigest atTarget = targetDigest.digest().digest();
            assertThat(atTarget).isEqualTo(atSource);
            assertThat(atSource).isEqualTo(fromScratch(source));
            assertThat(source.digest()).as("the full digest agrees").isEqualTo(target.digest());
        }
    }

    private static java.util.Map<String, Integer> slotsOf(VmConfig config) {
        java.util.Map<String, Integer> slots = new java.util.TreeMap<>();
        for (int i = 0; i < config.devices().size(); i++) {
            slots.put(config.devices().get(i).id(), i);
        }
        return slots;
    }

    @Test
    void aOneByteChangeAnywhereChangesItAndUndoingItRestoresIt() {
        try (Vm vm = Vm.boot(config("vm", WorkloadConfig.IDLE)); IncrementalDigest digest = vm.openVerifyDigest()) {
            VerifyDigest original = digest.digest().digest();
            SplittableRandom random = new SplittableRandom(SEED);
            List<String> missed = new ArrayList<>();
            byte[] one = new byte[1];
            for (int i = 0; i < 200; i++) {
                boolean guest = random.nextBoolean();
                Device device = vm.devices().get(random.nextInt(vm.devices().size()));
                long size = guest ? MEMORY : device.deviceMemoryBytes();
                long address = random.nextLong(size);
                byte before = read(vm, guest, device, address);
                one[0] = (byte) (before ^ (1 << random.nextInt(8)));
                write(vm, guest, device, address, one);
                if (digest.digest().digest().equals(original)) {
                    missed.add((guest ? "guest " : device.id() + " ") + address);
                }
                one[0] = before;
                write(vm, guest, device, address, one);
            }
            assertThat(missed).isEmpty();
            assertThat(digest.digest().digest()).isEqualTo(original);
            // The registers too: one more operation of a device changes its state image.
            Device nic = vm.device("nic0").orElseThrow();
            TestVms.work(vm, nic, 1, SEED);
            VerifyDigest worked = digest.digest().digest();
            assertThat(worked.vm()).isNotEqualTo(original.vm());
            assertThat(worked.devices().get("nic0")).isNotEqualTo(original.devices().get("nic0"));
        }
    }

    private static byte read(Vm vm, boolean guest, Device device, long address) {
        byte[] one = new byte[1];
        if (guest) {
            vm.memory().read(address, one, 0, 1);
        } else {
            device.readDeviceMemory(address, one, 0, 1);
        }
        return one[0];
    }

    private static void write(Vm vm, boolean guest, Device device, long address, byte[] one) {
        if (guest) {
            vm.memory().vcpuWrite(address, one, 0, 1);
        } else {
            device.writeDeviceMemory(address, one, 0, 1);
        }
    }

    @Test
    void atTheFrozenPointOnlyWhatChangedSinceTheLastRefreshIsHashed() {
        try (Vm vm = Vm.boot(config("vm", WorkloadConfig.IDLE)); IncrementalDigest digest = vm.openVerifyDigest()) {
            IncrementalDigest.Work first = digest.refresh();
            assertThat(first.bytes()).as("the first refresh reads what is allocated").isGreaterThanOrEqualTo(MEMORY);
            assertThat(digest.digest().work().units()).isZero();
            int unit = vm.memory().store().changeUnitBytes();
            byte[] bytes = {7};
            vm.memory().vcpuWrite(0, bytes, 0, 1);
            vm.memory().vcpuWrite(10L * unit + 5, bytes, 0, 1);
            Device gpu = vm.device("gpu0").orElseThrow();
            gpu.writeDeviceMemory(12_345, bytes, 0, 1);
            IncrementalDigest.Result frozen = digest.digest();
            assertThat(frozen.work().units()).isEqualTo(3);
            assertThat(frozen.work().bytes()).isEqualTo(2L * unit + PageGeometry.PAGE_SIZE);
        }
    }

    @Test
    void onlyAtAStillPointAndItFollowsHotPlug() {
        try (Vm vm = Vm.boot(config("vm", WorkloadConfig.IDLE)); IncrementalDigest digest = vm.openVerifyDigest()) {
            vm.startVcpus();
            assertThatThrownBy(digest::digest).isInstanceOf(DeviceModelException.class).hasMessageContaining("running");
            digest.refresh();
            vm.pause();
            vm.unplug("nic0");
            vm.hotPlug(TestVms.small("nic1", DeviceKind.NIC));
            vm.awaitQuiescent();
            VerifyDigest now = digest.digest().digest();
            assertThat(now.devices()).containsOnlyKeys("gpu0", "nvme0", "ser0", "nic1");
            assertThat(now).isEqualTo(fromScratch(vm));
        }
    }

    @Test
    void aDeviceInErrorOrFrozenIsDigestedAsItIs() {
        try (Vm vm = Vm.boot(config("vm", WorkloadConfig.IDLE)); IncrementalDigest digest = vm.openVerifyDigest()) {
            Device gpu = vm.device("gpu0").orElseThrow();
            TestVms.work(vm, gpu, 5, SEED);
            require(gpu.setState(DeviceState.STOP_COPY));
            assertThat(digest.digest().digest()).isEqualTo(fromScratch(vm));
        }
    }
}
