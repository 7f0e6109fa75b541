package dev.ferry.device.vm;

import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceModelException;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.memory.PageGeometry;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What a VM is made of.
 *
 * @param id            unique on its host
 * @param memoryBytes   guest memory, a multiple of 4096
 * @param vcpus         vCPU threads running the workload
 * @param initialMemory zero or random
 * @param workload      what the vCPUs do while running
 * @param p2p           when peer MMIO is mapped (M2)
 * @param devices       the devices, in slot order
 */
public record VmConfig(String id, long memoryBytes, int vcpus, InitialMemory initialMemory, WorkloadConfig workload,
                       P2pPolicy p2p, List<DeviceConfig> devices) {
    public static final int MAX_VCPUS = 64;
    public static final int MAX_DEVICES = 64;
    /** Each device slot owns this much guest memory, at the top, for its rings. */
    public static final long RING_AREA_BYTES = 64 * 1024;

    public VmConfig {
        if (id == null || !DeviceConfig.ID.matcher(id).matches()) {
            throw DeviceModelException.invalid("VM id must match " + DeviceConfig.ID.pattern() + ": " + id);
        }
        if (memoryBytes <= 0 || memoryBytes % PageGeometry.PAGE_SIZE != 0) {
            throw DeviceModelException.invalid("memoryBytes must be a positive multiple of " + PageGeometry.PAGE_SIZE + ": " + memoryBytes);
        }
        if (vcpus < 1 || vcpus > MAX_VCPUS) {
            throw DeviceModelException.invalid("vcpus must be between 1 and " + MAX_VCPUS + ": " + vcpus);
        }
        if (initialMemory == null || workload == null || p2p == null || devices == null) {
            throw DeviceModelException.invalid("VM " + id + " is missing initialMemory, workload, p2p or devices");
        }
        devices = List.copyOf(devices);
        if (devices.size() > MAX_DEVICES) {
            throw DeviceModelException.invalid("at most " + MAX_DEVICES + " devices per VM: " + devices.size());
        }
        Set<String> ids = new HashSet<>();
        for (DeviceConfig device : devices) {
            if (!ids.add(device.id())) {
                throw new DeviceModelException(DeviceModelException.DUPLICATE_ID, "device id " + device.id() + " appears twice");
            }
        }
        requireRingRoom(memoryBytes, devices.size());
        if (p2p == P2pPolicy.ON) {
            for (DeviceConfig device : devices) {
                if (!device.ndma()) {
                    throw new DeviceModelException(DeviceModelException.NDMA_REQUIRED,
                            "p2p is on, which needs NDMA of every device; " + device.id() + " lacks it (M2)");
                }
            }
        }
    }

    /** Guest memory must hold the ring areas of {@code slots} devices and at least one more area's worth. */
    static void requireRingRoom(long memoryBytes, int slots) {
        long needed = (slots + 1L) * RING_AREA_BYTES;
        if (memoryBytes < needed) {
            throw DeviceModelException.invalid("memoryBytes " + memoryBytes + " is too small for " + slots
                    + " devices: need at least " + needed);
        }
    }

    /** Base guest-physical address of a slot's ring area. */
    public static long ringBase(long memoryBytes, int slot) {
        return memoryBytes - (slot + 1L) * RING_AREA_BYTES;
    }

    public VmConfig withDevices(List<DeviceConfig> newDevices) {
        return new VmConfig(id, memoryBytes, vcpus, initialMemory, workload, p2p, newDevices);
    }

    public VmConfig withId(String newId) {
        return new VmConfig(newId, memoryBytes, vcpus, initialMemory, workload, p2p, devices);
    }
}
