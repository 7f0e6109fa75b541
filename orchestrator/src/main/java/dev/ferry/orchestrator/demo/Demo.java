package dev.ferry.orchestrator.demo;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.FerrydCommand;
import dev.ferry.orchestrator.cli.ApiClient;
import dev.ferry.orchestrator.cli.Progress;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/**
 * {@code ferryd demo}: starts a source and a destination daemon on loopback as separate processes,
 * creates two VMs on the source and live-migrates both at once with {@code verify: true}, showing
 * progress, then prints a result table per VM and stops both daemons with SIGTERM.
 *
 * <ul>
 *   <li>{@code web}: a NIC, a GPU with 64 MiB of pre-copied device memory and a serial port, P2P
 *       active, a workload dirtying memory and ringing peers' doorbells.</li>
 *   <li>{@code vault}: a crypto engine without NDMA and a serial port, so P2P stays off (M2).</li>
 * </ul>
 *
 * <p>{@code --quick} uses smaller VMs. Exit status 0 when both migrations completed, verified, with
 * {@code mmioWhileStopped} 0 on every device on both sides.
 */
@Command(name = "demo", description = "Starts two daemons on loopback, migrates two VMs at once from one to the other with"
        + " verify, shows progress and a table per VM, and stops both with SIGTERM. Exit status 0 only if both completed,"
        + " verified, with no MMIO on a stopped device.")
public final class Demo implements Callable<Integer> {
    @ParentCommand
    private FerrydCommand ferryd;

    @Option(names = "--quick", description = "smaller VMs (128 MiB and 64 MiB)")
    private boolean quick;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "this help")
    private boolean help;

    @Override
    public Integer call() {
        return run(quick, ferryd.out(), ferryd.err());
    }

    private static int run(boolean quick, PrintStream out, PrintStream err) {
        Path dir = null;
        DaemonProcess source = null;
        DaemonProcess destination = null;
        int status = 1;
        try {
            dir = Files.createTempDirectory("ferry-demo-");
            byte[] secret = new byte[16];
            new SecureRandom().nextBytes(secret);
            String token = HexFormat.of().formatHex(secret);
            Path tokenFile = Files.writeString(dir.resolve("token"), token);
            source = DaemonProcess.start("source", dir, tokenFile, List.of());
            destination = DaemonProcess.start("destination", dir, tokenFile, List.of());
            out.printf("source      ferryd: API %s, migrations %s (log %s)%n", source.http(), source.migration(), source.log());
            out.printf("destination ferryd: API %s, migrations %s (log %s)%n", destination.http(), destination.migration(),
                    destination.log());
            ApiClient from = new ApiClient(source.http(), token);
            ApiClient to = new ApiClient(destination.http(), token);
            status = migrate(from, to, destination.migration(), quick, out);
            return status;
        } catch (IOException e) {
            err.println("ferryd demo: " + dev.ferry.orchestrator.cli.Problems.describe(e));
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        } finally {
            stop(source, out);
            stop(destination, out);
            cleanUp(dir, status == 0, out);
        }
    }

    /** The demo's directory (logs, and the token): removed after a demo that went well, kept to read after one that did not. */
    private static void cleanUp(Path dir, boolean ok, PrintStream out) {
        if (dir == null) {
            return;
        }
        if (!ok) {
            out.println("logs and token kept in " + dir);
            return;
        }
        try (java.util.stream.Stream<Path> files = Files.walk(dir)) {
            for (Path file : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(file);
            }
        } catch (IOException e) {
            out.println("could not remove " + dir + ": " + dev.ferry.orchestrator.cli.Problems.describe(e));
        }
    }

    private static int migrate(ApiClient from, ApiClient to, String destination, boolean quick, PrintStream out)
            throws IOException, InterruptedException {
        long webMemory = quick ? 128L << 20 : 1L << 30;
        long vaultMemory = quick ? 64L << 20 : 256L << 20;
        JsonNode web = from.post("/v1/vms", Map.of("id", "web", "memoryBytes", webMemory, "vcpus", 2, "initialMemory", "random",
                "workload", Map.of("dirtyBytesPerSecond", 32L << 20, "p2pOpsPerSecond", 500, "seed", 7),
                "p2p", "auto", "devices", List.of(Map.of("id", "nic0", "kind", "nic"),
                        Map.of("id", "gpu0", "kind", "gpu", "precopy", true, "memoryBytes", quick ? 8L << 20 : 64L << 20),
                        Map.of("id", "serial0", "kind", "serial"))));
        JsonNode vault = from.post("/v1/vms", Map.of("id", "vault", "memoryBytes", vaultMemory, "vcpus", 1,
                "initialMemory", "random", "workload", Map.of("dirtyBytesPerSecond", 8L << 20, "seed", 11),
                "devices", List.of(Map.of("id", "crypto0", "kind", "crypto"), Map.of("id", "serial0", "kind", "serial"))));
        out.printf("created VM web:   %s, devices nic0 gpu0 serial0, p2p %s%n", Progress.bytes(webMemory),
                web.path("p2pActive").asBoolean() ? "active" : "inactive");
        out.printf("created VM vault: %s, devices crypto0 (no NDMA) serial0, p2p %s (M2)%n", Progress.bytes(vaultMemory),
                vault.path("p2pActive").asBoolean() ? "active" : "inactive");
        TimeUnit.MILLISECONDS.sleep(1000);

        List<String> ids = new ArrayList<>();
        for (String vm : List.of("web", "vault")) {
            JsonNode started = from.post("/v1/migrations", Map.of("vm", vm, "destination", destination, "channels", 2,
                    "verify", true, "downtimeLimitMs", 300));
            ids.add(started.path("id").asText());
        }
        out.println("migrating both at once, verify on:");
        List<JsonNode> last = watch(from, ids, out);

        out.println();
        out.printf("%-6s %-52s %5s %11s %9s %10s %16s %9s %-14s%n", "VM", "phases (ms)", "iters", "transferred", "total",
                "downtime", "of it digesting", "verified", "mmioWhileStopped");
        boolean ok = true;
        for (JsonNode migration : last) {
            String vm = migration.path("vm").asText();
            long sourceStray = stray(from.get("/v1/vms/" + vm));
            long destinationStray = migration.path("phase").asText().equals("completed") ? stray(to.get("/v1/vms/" + vm)) : -1;
            StringBuilder phases = new StringBuilder();
            for (JsonNode phase : migration.path("phases")) {
                if (!phase.path("durationMs").isNull() && !phase.path("phase").asText().equals("completed")) {
                    phases.append(shortName(phase.path("phase").asText())).append(' ').append(phase.path("durationMs").asLong())
                            .append(' ');
                }
            }
            out.printf(Locale.ROOT, "%-6s %-52s %5d %11s %7d ms %7s ms %13s ms %9s src %d / dst %d%n", vm,
                    phases.toString().trim(), migration.path("iterations").asLong(),
                    Progress.bytes(migration.path("transferredBytes").asLong()), migration.path("totalTimeMs").asLong(),
                    migration.path("downtimeMs").isNull() ? "-" : migration.path("downtimeMs").asText(),
                    migration.path("verifyMs").isNull() ? "-" : String.format(Locale.ROOT, "%.1f", migration.path("verifyMs").asDouble()),
                    migration.path("verified").asText(), sourceStray, destinationStray);
            ok &= migration.path("phase").asText().equals("completed") && migration.path("verified").asBoolean()
                    && sourceStray == 0 && destinationStray == 0;
        }
        for (JsonNode migration : last) {
            if (!migration.path("error").isNull()) {
                out.println(migration.path("vm").asText() + ": " + migration.path("error").path("code").asText() + ": "
                        + migration.path("error").path("message").asText());
            }
            if (migration.path("downtimeLimitMet").isBoolean() && !migration.path("downtimeLimitMet").asBoolean()) {
                out.printf(Locale.ROOT, "%s: downtime %d ms exceeded its %d ms limit (expected %s ms when it stopped):"
                                + " its downtimeSteps say where the time went%n",
                        migration.path("vm").asText(), migration.path("downtimeMs").asLong(),
                        migration.path("policy").path("downtimeLimitMs").asLong(), migration.path("expectedDowntimeMs").asText());
            }
            out.printf(Locale.ROOT, "%s: setup %d ms, throughput %s/s, %s of memory (%d zero pages), %s of device data%n",
                    migration.path("vm").asText(), migration.path("setupTimeMs").asLong(),
                    Progress.bytes(migration.path("throughputBytesPerSecond").asLong()),
                    Progress.bytes(migration.path("memoryBytes").path("transferred").asLong()),
                    migration.path("memoryBytes").path("zeroPages").asLong(), Progress.bytes(migration.path("deviceBytes").asLong()));
        }
        out.println(ok ? "both VMs run on the destination; frozen digests matched; no MMIO reached a stopped device (F2)"
                : "the demo did not end as it should: see above and the daemon logs");
        out.println("(verify digests the frozen VM on both sides before the commit, incrementally: its time is part of the"
                + " downtime)");
        return ok ? 0 : 1;
    }

    /** Polls both migrations and draws their progress until both have ended. */
    private static List<JsonNode> watch(ApiClient api, List<String> ids, PrintStream out) throws IOException, InterruptedException {
        boolean terminal = System.console() != null;
        List<JsonNode> views = new ArrayList<>();
        List<String> phases = new ArrayList<>();
        ids.forEach(id -> phases.add(""));
        boolean drawn = false;
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(10);
        while (true) {
            views.clear();
            for (String id : ids) {
                views.add(api.get("/v1/migrations/" + id));
            }
            if (terminal) {
                if (drawn) {
                    out.print("\033[" + ids.size() + "A");
                }
                for (JsonNode view : views) {
                    out.print("\r\033[K  " + Progress.line(view) + "\n");
                }
                drawn = true;
            } else {
                for (int i = 0; i < views.size(); i++) {
                    String phase = views.get(i).path("phase").asText();
                    if (!phase.equals(phases.get(i))) {
                        out.println("  " + Progress.line(views.get(i)));
                        phases.set(i, phase);
                    }
                }
            }
            out.flush();
            if (views.stream().allMatch(Progress::finished) || System.nanoTime() > deadline) {
                return List.copyOf(views);
            }
            TimeUnit.MILLISECONDS.sleep(200);
        }
    }

    private static long stray(JsonNode vm) {
        long total = 0;
        for (JsonNode device : vm.path("devices")) {
            total += device.path("stats").path("mmioWhileStopped").asLong();
        }
        return total;
    }

    private static String shortName(String phase) {
        return switch (phase) {
            case "viommu_grace" -> "viommu";
            case "p2p_grace" -> "p2p";
            case "stop_copy" -> "stopcopy";
            case "switchover" -> "switch";
            default -> phase;
        };
    }

    private static void stop(DaemonProcess daemon, PrintStream out) {
        if (daemon == null) {
            return;
        }
        try {
            int status = daemon.stop();
            out.printf("%s ferryd stopped by SIGTERM, exit status %d%n", daemon.name(), status);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

}
