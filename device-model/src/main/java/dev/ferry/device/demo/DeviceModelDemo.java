package dev.ferry.device.demo;

import dev.ferry.device.Device;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.vm.InProcessMigration;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.VmDigest;
import dev.ferry.device.vm.WorkloadConfig;
import java.io.PrintStream;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A tour of the device model: a VM with one device of each kind runs its workload, is saved live
 * through the reference flow into a second VM in the same process, and both digests are printed.
 * Exits 0 when they are equal.
 */
public final class DeviceModelDemo {
    private DeviceModelDemo() {
    }

    public static void main(String[] args) throws InterruptedException {
        PrintStream out = System.out;
        VmConfig config = new VmConfig("demo", 256L << 20, 2, InitialMemory.RANDOM,
                new WorkloadConfig(32L << 20, 0, 4_000, 42), P2pPolicy.AUTO, List.of(
                        DeviceConfig.of("nic0", DeviceKind.NIC),
                        DeviceConfig.of("gpu0", DeviceKind.GPU),
                        DeviceConfig.of("serial0", DeviceKind.SERIAL),
                        DeviceConfig.of("crypto0", DeviceKind.CRYPTO),
                        DeviceConfig.of("nvme0", DeviceKind.NVME)));
        try (Vm source = Vm.boot(config); Vm target = Vm.incoming(config, slots(config), Vm.Options.DEFAULT)) {
            out.printf("VM %s: %d MiB of random memory, %d vCPUs, p2p %s (%s)%n", config.id(), config.memoryBytes() >> 20,
                    config.vcpus(), config.p2p().label(), source.p2pActive() ? "active" : "inactive: crypto0 has no NDMA");
            for (Device device : source.devices()) {
                out.printf("  %-8s %-6s ndma=%-5s precopy=%-5s memory=%d KiB%n", device.id(), device.kind(),
                        device.config().ndma(), device.config().preCopy(), device.config().memoryBytes() >> 10);
            }
            source.startVcpus();
            long start = System.nanoTime();
            TimeUnit.MILLISECONDS.sleep(1000);
            out.printf("workload ran %.1f s: %,d pages dirtied, %,d doorbells%n", (System.nanoTime() - start) / 1e9,
                    source.workload().pagesDirtied(), source.workload().doorbells());

            long t0 = System.nanoTime();
            InProcessMigration.Report report = InProcessMigration.migrate(source, target, 3);
            out.printf("saved live and resumed in-process in %d ms: %d pre-copy iterations, %,d pages (%,d zero), %,d bytes of device data%n",
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), report.iterations(), report.pagesSent(),
                    report.zeroPages(), report.deviceBytes());

            VmDigest before = source.digest();
            VmDigest after = target.digest();
            out.printf("source digest %s%ntarget digest %s%n", before.vm(), after.vm());
            for (Map.Entry<String, String> device : before.devices().entrySet()) {
                String twin = after.devices().get(device.getKey());
                out.printf("  %-8s %s %s%n", device.getKey(), device.getValue().substring(0, 16),
                        device.getValue().equals(twin) ? "equal" : "DIFFERENT: " + twin);
            }
            for (Device device : source.devices()) {
                out.printf("  %-8s ops=%,d dma=%,d interrupts=%,d mmioWhileStopped=%d%n", device.id(),
                        device.stats().operations(), device.stats().dmaOperations(), device.stats().interrupts(),
                        device.stats().mmioWhileStopped());
            }
            boolean equal = before.equals(after);
            out.println(equal ? "digests equal: the resumed VM is the saved VM" : "DIGESTS DIFFER");
            if (!equal) {
                System.exit(1);
            }
        }
    }

    private static Map<String, Integer> slots(VmConfig config) {
        java.util.Map<String, Integer> slots = new java.util.HashMap<>();
        for (int i = 0; i < config.devices().size(); i++) {
            slots.put(config.devices().get(i).id(), i);
        }
        return slots;
    }
}
