package dev.ferry.orchestrator.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.orchestrator.api.Json;
import java.io.IOException;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code ctl migrate VM ...} and {@code ctl migration ...}. */
@Command(name = "migration", description = "The daemon's migrations, running and finished.",
        subcommands = {MigrationCommands.ListMigrations.class, MigrationCommands.Show.class, MigrationCommands.Info.class,
                MigrationCommands.Set.class, MigrationCommands.Cancel.class, MigrationCommands.Watch.class})
final class MigrationCommands implements Callable<Integer> {
    @Spec
    private CommandSpec spec;

    @Override
    public Integer call() {
        throw Ctl.missingCommand(spec);
    }

    @Command(name = "migrate", description = "Live-migrates a VM to another daemon (POST /v1/migrations).")
    static final class Migrate implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Parameters(paramLabel = "VM", description = "the VM's id")
        private String vm;

        @Option(names = "--to", paramLabel = "HOST:PORT", required = true, description = "the destination's migration listener")
        private String destination;

        @Option(names = "--watch", description = "follow it with a progress line; exit 0 only if it completed")
        private boolean watch;

        @Option(names = "--verify", description = "both sides digest the frozen VM; a difference fails the migration")
        private boolean verify;

        @Option(names = "--dry-run", description = "only ask whether the destination can host the VM (F8); nothing moves")
        private boolean dryRun;

        @Option(names = "--no-auto-converge", description = "do not throttle the vCPUs while it does not converge")
        private boolean noAutoConverge;

        @Option(names = "--capture", description = "write the session's frames to the daemons' --capture-dir (ferryd inspect reads them)")
        private boolean capture;

        @Option(names = "--capture-pages", description = "with --capture, PAGES frames with their page data too")
        private boolean capturePages;

        @Option(names = "--compression", paramLabel = "CODEC", description = "none (default), lz4 or zstd: page data compressed on the wire")
        private String compression;

        @Option(names = "--channels", paramLabel = "N", description = "data channels (1-16, default 1)")
        private Integer channels;

        @Option(names = "--downtime-limit-ms", paramLabel = "MS", description = "converge when the expected downtime fits (default 300)")
        private Long downtimeLimitMs;

        @Option(names = "--max-bandwidth", paramLabel = "BYTES_PER_S", description = "rate limit, 0 for none (default)")
        private Long maxBandwidth;

        @Option(names = "--max-iterations", paramLabel = "N", description = "pre-copy passes before giving up (default 30)")
        private Integer maxIterations;

        @Option(names = "--timeout-ms", paramLabel = "MS", description = "the whole migration's time (default 600000)")
        private Long timeoutMs;

        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> {
                ObjectNode request = Json.mapper().createObjectNode();
                request.put("vm", vm);
                request.put("destination", destination);
                if (verify) {
                    request.put("verify", true);
                }
                if (dryRun) {
                    request.put("dryRun", true);
                }
                if (noAutoConverge) {
                    request.put("autoConverge", false);
                }
                if (capture) {
                    request.put("capture", true);
                }
                if (capturePages) {
                    request.put("capturePages", true);
                }
                if (compression != null) {
                    request.put("compression", compression);
                }
                if (channels != null) {
                    request.put("channels", channels);
                }
                if (downtimeLimitMs != null) {
                    request.put("downtimeLimitMs", downtimeLimitMs);
                }
                if (maxBandwidth != null) {
                    request.put("maxBandwidthBytesPerSecond", maxBandwidth);
                }
                if (maxIterations != null) {
                    request.put("maxIterations", maxIterations);
                }
                if (timeoutMs != null) {
                    request.put("timeoutMs", timeoutMs);
                }
                JsonNode started = ctl.api().post("/v1/migrations", request);
                if (!watch) {
                    if (ctl.json()) {
                        ctl.print(started);
                    } else {
                        String id = started.path("id").asText();
                        ctl.out().printf(Locale.ROOT, "%s started%s: VM %s to %s; 'migration watch %s' follows it, 'migration info %s'"
                                + " sums it up%n", id, dryRun ? " (a dry run: nothing moves)" : "", vm, destination, id, id);
                    }
                    return 0;
                }
                return watch(ctl, started.path("id").asText());
            });
        }
    }

    @Command(name = "list", description = "Running migrations, then the last finished ones.")
    static final class ListMigrations implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> {
                JsonNode answer = ctl.api().get("/v1/migrations");
                if (ctl.json()) {
                    ctl.print(answer);
                    return 0;
                }
                ctl.out().printf("%-18s %-10s %-12s %-11s %8s %12s %10s%n", "MIGRATION", "VM", "ROLE", "PHASE", "ITERS", "BYTES",
                        "DOWNTIME");
                for (JsonNode m : answer.path("migrations")) {
                    ctl.out().printf("%-18s %-10s %-12s %-11s %8d %12s %10s%n", m.path("id").asText(), m.path("vm").asText(),
                            m.path("role").asText(), m.path("phase").asText(), m.path("iterations").asLong(),
                            Progress.bytes(m.path("transferredBytes").asLong()),
                            m.path("downtimeMs").isNull() ? "-" : m.path("downtimeMs").asLong() + " ms");
                }
                return 0;
            });
        }
    }

    /** A command on one migration. */
    abstract static class OneMigration implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(paramLabel = "ID", description = "the migration's id (mig-...)")
        String id;
    }

    @Command(name = "show", description = "The migration resource (GET /v1/migrations/ID) as JSON.")
    static final class Show extends OneMigration {
        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> {
                ctl.print(ctl.api().get("/v1/migrations/" + id));
                return 0;
            });
        }
    }

    @Command(name = "info", description = "A summary like virsh domjobinfo: phase, times, data, memory, rates, iterations,"
            + " downtime, throttle.")
    static final class Info extends OneMigration {
        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> {
                JsonNode migration = ctl.api().get("/v1/migrations/" + id);
                if (ctl.json()) {
                    ctl.print(migration);
                } else {
                    ctl.out().print(MigrationInfo.render(migration));
                }
                return 0;
            });
        }
    }

    @Command(name = "set", description = "New settings for a running migration (PATCH /v1/migrations/ID; source only, until"
            + " pre-copy ends).")
    static final class Set extends OneMigration {
        @Option(names = "--max-bandwidth", paramLabel = "BYTES_PER_S", description = "the rate limit, 0 for none")
        private Long maxBandwidth;

        @Option(names = "--downtime-limit-ms", paramLabel = "MS", description = "the downtime limit")
        private Long downtimeLimitMs;

        @Override
        public Integer call() {
            if (maxBandwidth == null && downtimeLimitMs == null) {
                throw new CommandLine.ParameterException(spec.commandLine(),
                        "migration set needs --max-bandwidth, --downtime-limit-ms or both");
            }
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> {
                ObjectNode update = Json.mapper().createObjectNode();
                if (maxBandwidth != null) {
                    update.put("maxBandwidthBytesPerSecond", maxBandwidth);
                }
                if (downtimeLimitMs != null) {
                    update.put("downtimeLimitMs", downtimeLimitMs);
                }
                JsonNode migration = ctl.api().patch("/v1/migrations/" + id, update);
                if (ctl.json()) {
                    ctl.print(migration);
                } else {
                    JsonNode policy = migration.path("policy");
                    long bandwidth = policy.path("maxBandwidthBytesPerSecond").asLong();
                    ctl.out().printf(Locale.ROOT, "%s: max bandwidth %s, downtime limit %d ms%n", id,
                            bandwidth == 0 ? "unlimited" : Progress.bytes(bandwidth) + "/s", policy.path("downtimeLimitMs").asLong());
                }
                return 0;
            });
        }
    }

    @Command(name = "cancel", description = "Cancels a migration: the source VM runs on as it was (DELETE /v1/migrations/ID).")
    static final class Cancel extends OneMigration {
        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> {
                JsonNode cancelled = ctl.api().delete("/v1/migrations/" + id);
                if (ctl.json()) {
                    ctl.print(cancelled);
                } else {
                    // The answer is the state when the cancel was taken; the migration ends as cancelled soon after.
                    ctl.out().printf(Locale.ROOT, "%s: cancel taken in phase %s; it ends as cancelled with the VM as it was"
                            + " ('migration info %s' says when)%n", id, cancelled.path("phase").asText(), id);
                }
                return 0;
            });
        }
    }

    @Command(name = "watch", description = "Follows a migration's events with a progress line; exit 0 only if it completed.")
    static final class Watch extends OneMigration {
        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> watch(ctl, id));
        }
    }

    /** The events whose data is the migration's state. */
    private static final java.util.Set<String> STATES = java.util.Set.of("progress", "phase", "end");

    /**
     * Follows the event stream: a live progress line on a terminal, a line per phase otherwise, and in
     * JSON output every state the stream sent (progress, phase, end), one per line. 0 when the
     * migration completed.
     */
    static int watch(Ctl ctl, String id) throws IOException, InterruptedException, Ctl.InputError {
        ApiClient api = ctl.api();
        boolean terminal = System.console() != null && !ctl.json();
        JsonNode[] last = new JsonNode[1];
        String[] phase = {""};
        IOException[] failed = new IOException[1];
        api.events("/v1/migrations/" + id + "/events", (type, data) -> {
            if (!STATES.contains(type)) {
                // A device's state change or a barrier step: the watch follows the migration's state.
                return true;
            }
            last[0] = data;
            if (ctl.json()) {
                try {
                    ctl.printLine(data);
                } catch (IOException e) {
                    failed[0] = e;
                    return false;
                }
            } else {
                String line = Progress.line(data);
                if (terminal) {
                    ctl.out().print("\r\033[K" + line);
                } else if (!phase[0].equals(data.path("phase").asText()) || type.equals("end")) {
                    ctl.out().println(line);
                }
                ctl.out().flush();
            }
            phase[0] = data.path("phase").asText();
            return !type.equals("end");
        });
        if (failed[0] != null) {
            throw failed[0];
        }
        if (terminal) {
            ctl.out().println();
        }
        JsonNode end = last[0] == null || !Progress.finished(last[0]) ? api.get("/v1/migrations/" + id) : last[0];
        if (!ctl.json()) {
            ctl.out().printf(Locale.ROOT, "%s %s: %s%n", id, end.path("phase").asText(), outcome(end));
        }
        return end.path("phase").asText().equals("completed") ? 0 : 1;
    }

    /**
     * How a watched migration ended, in one line: the error, or for a source's completed migration its
     * downtime against the limit and, when asked for, that the two sides' digests matched (a mismatch
     * fails it with {@code verify_failed}).
     */
    static String outcome(JsonNode end) {
        if (!end.path("error").isNull() && !end.path("error").isMissingNode()) {
            return end.path("error").path("code").asText() + ": " + end.path("error").path("message").asText();
        }
        StringBuilder line = new StringBuilder("ok");
        if (end.path("downtimeMs").isNumber()) {
            long limit = end.path("policy").path("downtimeLimitMs").asLong();
            line.append(String.format(Locale.ROOT, ", downtime %d ms %s %d ms limit", end.path("downtimeMs").asLong(),
                    end.path("downtimeLimitMet").asBoolean(true) ? "within its" : "over its", limit));
        }
        if (end.path("verified").asBoolean(false)) {
            line.append(", verified");
        }
        return line.toString();
    }
}
