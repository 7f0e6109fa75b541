package dev.ferry.device.bench;

import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.vm.IncrementalDigest;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.VmDigest;
import dev.ferry.device.vm.WorkloadConfig;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * What verifying costs at the frozen point: the full SHA-256 digest ({@link Vm#digest()}) against the
 * incremental verify digest ({@link IncrementalDigest}) of the same VM, after it ran with a dirtying
 * workload while the incremental digest was refreshed in the background.
 *
 * <pre>mvn -q -pl device-model -am compile exec:java@digest [-Dexec.args="guestMiB dirtyMiBps deviceDirtyMiBps seconds"]</pre>
 */
public final class VerifyDigestBenchmark {
    private VerifyDigestBenchmark() {
    }

    public static void main(String[] args) {
        long guestMib = args.length > 0 ? Long.parseLong(args[0]) : 1024;
        long dirtyMibps = args.length > 1 ? Long.parseLong(args[1]) : 64;
        long deviceMibps = args.length > 2 ? Long.parseLong(args[2]) : 16;
        int seconds = args.length > 3 ? Integer.parseInt(args[3]) : 3;
        WorkloadConfig workload = WorkloadConfig.of(dirtyMibps << 20, 0, 1).withDeviceDirtyBytesPerSecond(deviceMibps << 20);
        VmConfig config = new VmConfig("bench", guestMib << 20, 2, InitialMemory.RANDOM, workload, P2pPolicy.AUTO, List.of(
                DeviceConfig.of("gpu0", DeviceKind.GPU), DeviceConfig.of("nic0", DeviceKind.NIC),
                DeviceConfig.of("nvme0", DeviceKind.NVME), DeviceConfig.of("ser0", DeviceKind.SERIAL)));
        System.out.printf(Locale.ROOT, "VM of %d MiB random memory, gpu 64 MiB, nic, nvme 16 MiB, serial; vCPUs dirty %d MiB/s, "
                + "each device %d MiB/s of its own memory; %d s of work%n", guestMib, dirtyMibps, deviceMibps, seconds);
        try (Vm vm = Vm.boot(config); IncrementalDigest digest = vm.openVerifyDigest()) {
            IncrementalDigest.Work first = digest.refresh();
            System.out.printf(Locale.ROOT, "first refresh (everything allocated): %d units, %d MiB, %.1f ms%n",
                    first.units(), first.bytes() >> 20, first.nanos() / 1e6);
            vm.startVcpus();
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            long refreshes = 0;
            long units = 0;
            long nanos = 0;
            long worst = 0;
            while (System.nanoTime() < end) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
                IncrementalDigest.Work work = digest.refresh();
                refreshes++;
                units += work.units();
                nanos += work.nanos();
                worst = Math.max(worst, work.nanos());
            }
            System.out.printf(Locale.ROOT, "background refreshes every 100 ms while running: %d, %.0f units and %.2f ms each on average, "
                    + "worst %.2f ms%n", refreshes, units / (double) refreshes, nanos / 1e6 / refreshes, worst / 1e6);
            vm.pause();
            long start = System.nanoTime();
            IncrementalDigest.Result frozen = digest.digest();
            long incremental = System.nanoTime() - start;
            start = System.nanoTime();
            VmDigest full = vm.digest();
            long sha = System.nanoTime() - start;
            System.out.printf(Locale.ROOT, "frozen point, incremental digest: %.2f ms (%d units, %.1f MiB hashed since the last refresh)%n",
                    incremental / 1e6, frozen.work().units(), frozen.work().bytes() / 1048576.0);
            System.out.printf(Locale.ROOT, "frozen point, full SHA-256 digest (Vm.digest): %.2f ms%n", sha / 1e6);
            // The same with its code compiled, as in a daemon that has verified migrations before: a few pages
            // changed since the last refresh, then the frozen-point digest again.
            long best = Long.MAX_VALUE;
            byte[] page = new byte[4096];
            for (int i = 0; i < 20; i++) {
                for (int p = 0; p < 100; p++) {
                    vm.memory().vcpuWrite(((long) (i * 100 + p) * 7919 % (guestMib << 8)) << 12, page, 0, page.length);
                }
                start = System.nanoTime();
                digest.digest();
                best = Math.min(best, System.nanoTime() - start);
            }
            System.out.printf(Locale.ROOT, "frozen point, incremental digest once its code is compiled, 100 pages changed: %.2f ms (best of 20)%n",
                    best / 1e6);
            if (full.vm().isEmpty()) {
                throw new IllegalStateException("no digest");
            }
        }
    }
}
