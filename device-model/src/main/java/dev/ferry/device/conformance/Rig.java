package dev.ferry.device.conformance;

import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.DmaObserver;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import java.util.ArrayList;
import java.util.List;

/**
 * Where a check runs a kind: small VMs (4 MiB of guest memory, idle vCPUs) with one device of the kind, in each
 * configuration the kind allows: NDMA on and off (if it can have it) and internal logging on and off. Device
 * memory is the kind's default up to 64 KiB, so that whole streams stay small and every case is quick.
 */
final class Rig {
    static final long GUEST_MEMORY = 4L << 20;
    static final long MAX_DEVICE_MEMORY = 64L << 10;
    static final String DEVICE_ID = "dev0";

    private final DeviceKind kind;

    Rig(DeviceKind kind) {
        this.kind = kind;
    }

    DeviceKind kind() {
        return kind;
    }

    /** The kind's defaults, with small device memory. */
    DeviceConfig config() {
        DeviceConfig defaults = DeviceConfig.of(DEVICE_ID, kind);
        return defaults.withMemoryBytes(Math.min(defaults.memoryBytes(), MAX_DEVICE_MEMORY));
    }

    /** Every configuration the kit tries: NDMA as the kind can have it, pre-copy off and on. */
    List<DeviceConfig> configs() {
        List<DeviceConfig> configs = new ArrayList<>();
        for (boolean ndma : kind.ndmaCapable() ? new boolean[] {true, false} : new boolean[] {false}) {
            for (boolean preCopy : new boolean[] {false, true}) {
                configs.add(config().withNdma(ndma).withPreCopy(preCopy));
            }
        }
        return configs;
    }

    Vm boot(DeviceConfig device) {
        return boot(device, DmaObserver.NONE);
    }

    Vm boot(DeviceConfig device, DmaObserver observer) {
        VmConfig config = new VmConfig("conformance", GUEST_MEMORY, 1, InitialMemory.ZERO, WorkloadConfig.IDLE, P2pPolicy.AUTO,
                List.of(device));
        return Vm.boot(config, new Vm.Options(observer, 5_000));
    }

    /** A device's whole stream, as a twin of the same configuration saves it after some work of its own. */
    byte[] twinStream(DeviceConfig device) {
        try (Vm twin = boot(device)) {
            Probe probe = new Probe(twin);
            busy(twin, probe, 1);
            probe.require(DeviceState.STOP_COPY);
            return probe.drain(64 * 1024);
        }
    }

    /** Gives the device something to migrate: doorbells (its registers, DMA) and own writes (its memory). */
    static void busy(Vm vm, Probe probe, long seed) {
        probe.ring(20, seed);
        probe.ownWork(40, seed);
        if (!vm.awaitQuiescent()) {
            throw probe.violation("the device did not go idle after its work (its engine is stuck)");
        }
    }
}
