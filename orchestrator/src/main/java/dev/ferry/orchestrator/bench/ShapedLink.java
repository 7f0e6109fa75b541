package dev.ferry.orchestrator.bench;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.cli.ApiClient;
import dev.ferry.orchestrator.cli.Progress;
import dev.ferry.orchestrator.demo.DaemonProcess;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * The shaped-link benchmark: two network namespaces made for it, joined by a veth pair whose rate
 * {@code tc}'s token bucket filter limits (1 and 10 Gbit/s, both directions), a daemon in each. Each
 * namespace also has an unshaped veth to this one, for the control API only. A VM of mixed content
 * (a quarter zero, half text-like, a quarter random pages) migrates back and forth over the shaped link,
 * uncompressed and with zstd. The link rate is what the figures are judged against; where iperf3 is
 * installed, a plain TCP stream over the same link in the same run says what the link gives at most.
 *
 * <p>Both daemons prefill a memory pool of the VM's size at start ({@code --memory-pool-prefill}) and the
 * benchmark waits until they hold it: every migration then lands in memory already backed, as a host
 * sized for such VMs provides. Fresh memory would otherwise be measured instead of the link: on a virtual
 * machine whose hypervisor backs each page on its first touch, 3 GiB of it cost the destination more
 * than 10 s of CPU (2026-12-02), which at 10 Gbit/s is most of the migration.
 *
 * <p>Needs root and {@code ip}: anywhere else it says so in one line and measures nothing. Everything
 * it makes (both namespaces, their links) is removed when it ends, however it ends.
 */
final class ShapedLink {
    private static final long GIB = 1L << 30;
    /** 10.231.0.0/30 the shaped link; 10.231.1.0/30 and 10.231.2.0/30 control to each namespace. */
    private static final String NET = "10.231.";

    private final Bench bench;
    private final Path dir;
    private final Path tokenFile;
    private final List<String> jvm;
    private final String tag = Long.toString(ProcessHandle.current().pid() % 100_000);
    private final String nsA = "ferry-bench-" + tag + "-a";
    private final String nsB = "ferry-bench-" + tag + "-b";
    private final List<String> rootLinks = new ArrayList<>();

    ShapedLink(Bench bench, Path dir, Path tokenFile, List<String> jvm) {
        this.bench = bench;
        this.dir = dir;
        this.tokenFile = tokenFile;
        this.jvm = jvm;
    }

    void run() throws Exception {
        String why = unavailable();
        if (why != null) {
            bench.skipped("shaped", "link rate over tbf-shaped veth in network namespaces", why);
            return;
        }
        long memory = bench.quick() ? GIB : 4 * GIB;
        bench.out().printf(Locale.ROOT, "shaped: a %s VM of mixed content between namespaces %s and %s%n", Progress.bytes(memory),
                nsA, nsB);
        try {
            makeNamespaces();
            List<String> pool = List.of("--memory-pool-bytes", Long.toString(memory), "--memory-pool-prefill");
            try (DaemonProcess a = DaemonProcess.start("shaped-a", dir, tokenFile, jvm, List.of("ip", "netns", "exec", nsA),
                    NET + "1.2:0", NET + "0.1:0", pool);
                 DaemonProcess b = DaemonProcess.start("shaped-b", dir, tokenFile, jvm, List.of("ip", "netns", "exec", nsB),
                         NET + "2.2:0", NET + "0.2:0", pool)) {
                awaitPools(memory, a, b);
                ApiClient apiA = new ApiClient(a.http(), bench.token());
                ApiClient apiB = new ApiClient(b.http(), bench.token());
                apiA.post("/v1/vms", Map.of("id", "shaped", "memoryBytes", memory, "initialMemory", "mixed", "running", false,
                        "workload", Map.of("seed", 31), "devices", List.of(Map.of("id", "nic0", "kind", "nic"))));
                Bench.Pair pair = bench.new Pair(apiA, a.migration(), apiB, b.migration());
                warmUp(apiA, pair);
                for (long gbit : new long[] {1, 10}) {
                    shape(gbit);
                    long linkBytesPerSecond = gbit * 1_000_000_000L / 8;
                    String baseline = iperf(gbit);
                    List<Run> plain = runs(pair, "none", 2);
                    Run bestPlain = best(plain);
                    bench.result("shaped", gbit + " Gbit/s link, uncompressed", bestPlain.rate() >= 0.95 * linkBytesPerSecond,
                            String.format(Locale.ROOT, "best %s/s on the wire over the whole migration (%d ms, %s), %.1f%% of the"
                                            + " link's %s/s (target >= 95%%); all %s%s", Progress.bytes(Math.round(bestPlain.rate())),
                                    bestPlain.millis(), Progress.bytes(bestPlain.wire()), 100 * bestPlain.rate() / linkBytesPerSecond,
                                    Progress.bytes(linkBytesPerSecond), plain, baseline));
                    // The same link with jumbo frames, as migration networks often run: less of it goes to headers.
                    mtu(9000);
                    Run jumbo = best(runs(pair, "none", 1));
                    mtu(1500);
                    bench.out().printf(Locale.ROOT, "    %d Gbit/s with a 9000-byte MTU: %d ms, %s/s on the wire, %.1f%% of the link%n", gbit,
                            jumbo.millis(), Progress.bytes(Math.round(jumbo.rate())), 100 * jumbo.rate() / linkBytesPerSecond);
                    if (gbit == 1) {
                        List<Run> zstd = runs(pair, "zstd", 2);
                        Run bestZstd = best(zstd);
                        bench.result("shaped", "1 Gbit/s link, zstd against uncompressed", bestZstd.millis() <= 0.6 * bestPlain.millis(),
                                String.format(Locale.ROOT, "best %d ms (%s on the wire) vs %d ms uncompressed: %.2fx (target"
                                                + " <= 0.6x); all %s", bestZstd.millis(), Progress.bytes(bestZstd.wire()),
                                        bestPlain.millis(), (double) bestZstd.millis() / bestPlain.millis(), zstd));
                    }
                }
                pair.delete("shaped");
            }
        } finally {
            removeNamespaces();
        }
    }

    /**
     * These two daemons are new: before the link is shaped, a smaller VM goes back and forth over it, with
     * and without compression, as the other benchmarks' daemons are warmed up first. Otherwise the first
     * migration measured ran in a cold JIT (its setup alone took 89 to 219 ms, against 30 to 40 warm).
     */
    private static void warmUp(ApiClient apiA, Bench.Pair pair) throws Exception {
        apiA.post("/v1/vms", Map.of("id", "shaped-warm", "memoryBytes", 256L << 20, "initialMemory", "mixed", "running", false,
                "workload", Map.of("seed", 32), "devices", List.of(Map.of("id", "nic0", "kind", "nic"))));
        pair.quiet = true;
        for (int i = 0; i < WARM_UP_MIGRATIONS; i++) {
            pair.migrate("shaped-warm", Map.of("compression", i % 2 == 0 ? "none" : "zstd", "channels", 2));
        }
        pair.quiet = false;
        pair.delete("shaped-warm");
    }

    private static final Pattern POOL_BYTES =
            Pattern.compile("^ferry_memory_pool_bytes(?:\\{[^}]*\\})? (\\S+)$", Pattern.MULTILINE);

    /** Waits, a bounded time, until each daemon's pool holds {@code bytes}, and says how long that took. */
    private void awaitPools(long bytes, DaemonProcess... daemons) throws IOException, InterruptedException {
        long start = System.nanoTime();
        long deadline = start + TimeUnit.MINUTES.toNanos(3);
        double least = 0;
        while (System.nanoTime() < deadline) {
            least = Double.MAX_VALUE;
            for (DaemonProcess daemon : daemons) {
                least = Math.min(least, Bench.metric(daemon, POOL_BYTES));
            }
            if (least >= bytes) {
                break;
            }
            TimeUnit.MILLISECONDS.sleep(200);
        }
        bench.out().printf(Locale.ROOT, "    memory pools prefilled: %s of %s each (the least of the two) after %.1f s%n",
                Progress.bytes((long) least), Progress.bytes(bytes), (System.nanoTime() - start) / 1e9);
    }

    /** An even number: the warm-up's VM ends where it began, as the benchmark's own VM does. */
    private static final int WARM_UP_MIGRATIONS = 8;

    /** One migration: its whole time and the bytes it put on the wire. */
    private record Run(long millis, long wire) {
        double rate() {
            return wire * 1000.0 / millis;
        }

        @Override
        public String toString() {
            return millis + " ms";
        }
    }

    private static List<Run> runs(Bench.Pair pair, String compression, int count) throws Exception {
        List<Run> runs = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            JsonNode end = pair.migrate("shaped", Map.of("compression", compression, "channels", 2));
            runs.add(new Run(end.path("totalTimeMs").asLong(), end.path("transferredBytes").asLong()));
        }
        return runs;
    }

    private static Run best(List<Run> runs) {
        return runs.stream().min(java.util.Comparator.comparingLong(Run::millis)).orElseThrow();
    }

    /** Why the benchmark cannot run here, or null. */
    private static String unavailable() {
        if (!"root".equals(System.getProperty("user.name"))) {
            return "network namespaces need root (run the benchmark as root to include it)";
        }
        try {
            if (command(List.of("ip", "netns", "list")).exit != 0) {
                return "'ip netns' does not work here (Debian: apt-get install iproute2)";
            }
        } catch (IOException e) {
            return "no 'ip' command (Debian: apt-get install iproute2)";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
        return null;
    }

    private void makeNamespaces() throws IOException, InterruptedException {
        must("ip", "netns", "add", nsA);
        must("ip", "netns", "add", nsB);
        String[] ns = {nsA, nsB};
        for (int i = 0; i < 2; i++) {
            // Control: an unshaped veth from here into the namespace.
            String here = "fbc" + tag + (char) ('a' + i);
            String there = here + "n";
            must("ip", "link", "add", here, "type", "veth", "peer", "name", there);
            rootLinks.add(here);
            must("ip", "link", "set", there, "netns", ns[i]);
            must("ip", "addr", "add", NET + (i + 1) + ".1/30", "dev", here);
            must("ip", "link", "set", here, "up");
            must("ip", "-n", ns[i], "addr", "add", NET + (i + 1) + ".2/30", "dev", there);
            must("ip", "-n", ns[i], "link", "set", there, "up");
            must("ip", "-n", ns[i], "link", "set", "lo", "up");
        }
        // The shaped link between the two.
        must("ip", "link", "add", "fbd" + tag + "a", "type", "veth", "peer", "name", "fbd" + tag + "b");
        rootLinks.add("fbd" + tag + "a");
        for (int i = 0; i < 2; i++) {
            String link = "fbd" + tag + (char) ('a' + i);
            must("ip", "link", "set", link, "netns", ns[i]);
            must("ip", "-n", ns[i], "addr", "add", NET + "0." + (i + 1) + "/30", "dev", link);
            must("ip", "-n", ns[i], "link", "set", link, "up");
        }
    }

    /** Both directions of the shaped link limited to {@code gbit}: a bucket of 10 ms of the rate, 50 ms of queue. */
    private void shape(long gbit) throws IOException, InterruptedException {
        long burst = gbit * 1_000_000_000L / 8 / 100;
        for (int i = 0; i < 2; i++) {
            must("ip", "netns", "exec", i == 0 ? nsA : nsB, "tc", "qdisc", "replace", "dev", "fbd" + tag + (char) ('a' + i), "root",
                    "tbf", "rate", gbit + "gbit", "burst", Long.toString(burst), "latency", "50ms");
        }
    }

    private void mtu(int bytes) throws IOException, InterruptedException {
        for (int i = 0; i < 2; i++) {
            must("ip", "-n", i == 0 ? nsA : nsB, "link", "set", "fbd" + tag + (char) ('a' + i), "mtu", Integer.toString(bytes));
        }
    }

    /** A plain TCP stream over the same link for 5 s, where iperf3 is installed: what the link gives a single stream. */
    private String iperf(long gbit) throws IOException, InterruptedException {
        try {
            if (command(List.of("iperf3", "--version")).exit != 0) {
                return "";
            }
        } catch (IOException e) {
            return "; no plain-TCP baseline: iperf3 is not installed (Debian: apt-get install iperf3)";
        }
        Process server = new ProcessBuilder("ip", "netns", "exec", nsB, "iperf3", "-s", "-1", "-B", NET + "0.2")
                .redirectErrorStream(true).redirectOutput(dir.resolve("iperf3-server.out").toFile()).start();
        try {
            // The server may not listen yet, or a client may reach the last run's server as it ends: until a figure comes.
            Result client = null;
            double bps = 0;
            for (int attempt = 0; attempt < 20 && bps <= 0; attempt++) {
                if (attempt > 0) {
                    TimeUnit.MILLISECONDS.sleep(100);
                }
                client = command(List.of("ip", "netns", "exec", nsA, "iperf3", "-c", NET + "0.2", "-t", "5", "-J"));
                if (client.exit == 0) {
                    bps = dev.ferry.orchestrator.api.Json.mapper().readTree(client.output).path("end").path("sum_received")
                            .path("bits_per_second").asDouble();
                }
            }
            if (bps <= 0) {
                return "; iperf3 gave no figure: " + (client == null ? "" : client.output.strip());
            }
            return String.format(Locale.ROOT, "; baseline, iperf3 over the same link: %s/s (%.1f%% of the link)",
                    Progress.bytes(Math.round(bps / 8)), bps / (gbit * 1e9) * 100);
        } finally {
            server.destroy();
            server.waitFor(5, TimeUnit.SECONDS);
        }
    }

    private void removeNamespaces() {
        for (String ns : new String[] {nsA, nsB}) {
            try {
                command(List.of("ip", "netns", "del", ns));
            } catch (IOException | InterruptedException e) {
                bench.out().println("shaped: could not remove namespace " + ns + ": " + e);
            }
        }
        for (String link : rootLinks) {
            try {
                // Gone with its peer's namespace already, as a rule; this is for a start that failed half way.
                command(List.of("ip", "link", "del", link));
            } catch (IOException | InterruptedException e) {
                bench.out().println("shaped: could not remove link " + link + ": " + e);
            }
        }
    }

    private record Result(int exit, String output) {
    }

    private void must(String... command) throws IOException, InterruptedException {
        Result result = command(List.of(command));
        if (result.exit != 0) {
            throw new IOException(String.join(" ", command) + " failed (" + result.exit + "): " + result.output.strip());
        }
    }

    private static Result command(List<String> command) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        byte[] output = process.getInputStream().readAllBytes();
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new IOException(String.join(" ", command) + " did not end in 60 s");
        }
        return new Result(process.exitValue(), new String(output, StandardCharsets.UTF_8));
    }
}
