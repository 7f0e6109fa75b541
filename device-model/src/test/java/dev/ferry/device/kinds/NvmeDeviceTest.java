package dev.ferry.device.kinds;

import dev.ferry.device.Device;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.MmioSource;
import dev.ferry.device.TestVms;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.memory.DirtyBitmap;
import dev.ferry.device.memory.GuestMemory;
import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The storage kind does real work: a block written from one guest buffer reads back into a guest
 * buffer byte for byte; every command posts its completion and raises an interrupt; all of it by DMA
 * through the IOMMU, so the DMA dirty log sees every guest page it wrote (M1).
 */
class NvmeDeviceTest {
    private static final int BLOCK = NvmeDevice.BLOCK_BYTES;
    private static final long SEED = 20261124L;

    private static void ring(Vm vm, Device device, int op, long arg) {
        device.mmioWrite(Device.REG_DOORBELL, Mix.doorbell(op, arg), MmioSource.CPU);
        assertThat(vm.awaitQuiescent()).isTrue();
    }

    /** The data buffers: the ring area after its 4 KiB completion queue. */
    private static List<Long> buffers(Vm vm, Device device) {
        long base = VmConfig.ringBase(vm.memory().sizeBytes(), device.slot());
        List<Long> out = new ArrayList<>();
        for (long at = base + 4096; at + BLOCK <= base + VmConfig.RING_AREA_BYTES; at += BLOCK) {
            out.add(at);
        }
        return out;
    }

    private static byte[] read(GuestMemory memory, long address, int length) {
        byte[] out = new byte[length];
        memory.read(address, out, 0, length);
        return out;
    }

    @Test
    void aWrittenBlockReadsBackAndEveryCommandCompletesByDma() {
        try (Vm vm = TestVms.boot(DeviceConfig.of("nvme0", DeviceKind.NVME).withMemoryBytes(64 * 1024))) {
            Device nvme = vm.devices().get(0);
            GuestMemory memory = vm.memory();
            List<Long> buffers = buffers(vm, nvme);
            SplittableRandom random = new SplittableRandom(SEED);
            List<byte[]> patterns = new ArrayList<>();
            for (long buffer : buffers) {
                byte[] pattern = new byte[BLOCK];
                random.nextBytes(pattern);
                patterns.add(pattern);
                memory.vcpuWrite(buffer, pattern, 0, BLOCK);
            }
            long arg = random.nextLong();
            ring(vm, nvme, NvmeDevice.OP_WRITE, arg);

            // Every buffer cleared: a read of the same block, into the same buffer, restores exactly one.
            for (long buffer : buffers) {
                memory.vcpuWrite(buffer, new byte[BLOCK], 0, BLOCK);
            }
            vm.iommu().startDirtyTracking();
            ring(vm, nvme, NvmeDevice.OP_READ, arg);
            ring(vm, nvme, NvmeDevice.OP_FLUSH, 0);
            DirtyBitmap.Snapshot dirty = memory.dmaLog().readAndClear();

            List<Integer> filled = new ArrayList<>();
            for (int i = 0; i < buffers.size(); i++) {
                byte[] now = read(memory, buffers.get(i), BLOCK);
                if (!Arrays.equals(now, new byte[BLOCK])) {
                    filled.add(i);
                    assertThat(now).as("buffer %d holds the block written from it", i).isEqualTo(patterns.get(i));
                    assertThat(dirty.contains(buffers.get(i) / PageGeometry.PAGE_SIZE)).as("M1: the DMA log has the read's page").isTrue();
                }
            }
            assertThat(filled).hasSize(1);

            long queue = VmConfig.ringBase(memory.sizeBytes(), nvme.slot());
            assertThat(dirty.contains(queue / PageGeometry.PAGE_SIZE)).as("M1: the DMA log has the completion queue").isTrue();
            for (int command = 0; command < 3; command++) {
                assertThat(memory.readLong(queue + 16L * command)).as("completion %d", command).isEqualTo(command);
            }
            assertThat(memory.readLong(queue + 8) >>> 56).isEqualTo(NvmeDevice.OP_WRITE);
            assertThat(memory.readLong(queue + 24) >>> 56).isEqualTo(NvmeDevice.OP_READ);
            assertThat(memory.readLong(queue + 40) >>> 56).isEqualTo(NvmeDevice.OP_FLUSH);
            assertThat(memory.readLong(queue + 8) & 0xffff).as("the same block").isEqualTo(memory.readLong(queue + 24) & 0xffff);

            assertThat(nvme.stats().interrupts()).isEqualTo(3);
            Map<String, Long> registers = new HashMap<>();
            nvme.describeRegisters(registers);
            assertThat(registers).containsEntry("commands", 3L).containsEntry("blocksWritten", 1L).containsEntry("blocksRead", 1L);
        }
    }

    @Test
    void defaultsAreNdmaAndPreCopyOfA16MibNamespace() {
        DeviceConfig config = DeviceConfig.of("nvme0", DeviceKind.NVME);
        assertThat(config.ndma()).isTrue();
        assertThat(config.preCopy()).isTrue();
        assertThat(config.memoryBytes()).isEqualTo(16L << 20);
        assertThat(DeviceKind.of("NVMe")).isEqualTo(DeviceKind.NVME);
    }
}
