package dev.ferry.orchestrator.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.orchestrator.api.Json;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ctl drain --to HOST:PORT [--max-parallel N] [--watch]}: migrates every VM of the daemon to
 * another one, a few at a time ({@code POST /v1/drain}); {@code drain show}, {@code drain watch} and
 * {@code drain cancel} for the drain under way or the last one.
 */
@Command(name = "drain", description = "Migrates every VM of the daemon to a destination, at most --max-parallel at once.",
        subcommands = {DrainCommand.Show.class, DrainCommand.Watch.class, DrainCommand.Cancel.class})
final class DrainCommand implements Callable<Integer> {
    /** How often a watch asks for the drain's state. */
    private static final long POLL_MILLIS = 500;

    @Spec
    private CommandSpec spec;

    @Option(names = "--to", paramLabel = "HOST:PORT", description = "the destination's migration listener")
    private String destination;

    @Option(names = "--max-parallel", paramLabel = "N", description = "migrations at once (1-16, default 2)")
    private Integer maxParallel;

    @Option(names = "--watch", description = "follow it until every VM is done; exit 0 only if all were migrated")
    private boolean watch;

    @Override
    public Integer call() {
        if (destination == null) {
            throw new CommandLine.ParameterException(spec.commandLine(), "drain needs --to HOST:PORT, or one of "
                    + String.join(", ", spec.subcommands().keySet()));
        }
        Ctl ctl = Ctl.of(spec);
        return ctl.run(() -> {
            ObjectNode request = Json.mapper().createObjectNode();
            request.put("destination", destination);
            if (maxParallel != null) {
                request.put("maxParallel", maxParallel);
            }
            JsonNode drain = ctl.api().post("/v1/drain", request);
            if (!watch) {
                show(ctl, drain);
                return 0;
            }
            return follow(ctl, drain);
        });
    }

    @Command(name = "show", description = "The drain under way, or the last one (GET /v1/drain).")
    static final class Show implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> {
                show(ctl, ctl.api().get("/v1/drain"));
                return 0;
            });
        }
    }

    @Command(name = "watch", description = "Follows the drain until every VM is done; exit 0 only if all were migrated.")
    static final class Watch implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> follow(ctl, ctl.api().get("/v1/drain")));
        }
    }

    @Command(name = "cancel", description = "Cancels the drain: running migrations roll back, no more start (DELETE /v1/drain).")
    static final class Cancel implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> {
                show(ctl, ctl.api().delete("/v1/drain"));
                return 0;
            });
        }
    }

    private static boolean finished(JsonNode drain) {
        String state = drain.path("state").asText();
        return state.equals("completed") || state.equals("failed") || state.equals("cancelled");
    }

    /** Polls the drain, printing it whenever a VM's state or phase changed; 0 when every VM was migrated. */
    private static int follow(Ctl ctl, JsonNode first) throws Exception {
        JsonNode drain = first;
        String shown = null;
        while (true) {
            String key = signature(drain);
            if (!key.equals(shown)) {
                if (ctl.json()) {
                    ctl.printLine(drain);
                } else {
                    ctl.out().print(render(drain));
                    ctl.out().println();
                    ctl.out().flush();
                }
                shown = key;
            }
            if (finished(drain)) {
                return drain.path("state").asText().equals("completed") ? 0 : 1;
            }
            TimeUnit.MILLISECONDS.sleep(POLL_MILLIS);
            drain = ctl.api().get("/v1/drain");
        }
    }

    /** What a watch reprints on: the drain's state and each VM's state and phase. */
    private static String signature(JsonNode drain) {
        StringBuilder key = new StringBuilder(drain.path("state").asText());
        for (JsonNode vm : drain.path("vms")) {
            key.append(' ').append(vm.path("state").asText()).append('/').append(vm.path("phase").asText());
        }
        return key.toString();
    }

    private static void show(Ctl ctl, JsonNode drain) throws java.io.IOException {
        if (ctl.json()) {
            ctl.print(drain);
        } else {
            ctl.out().print(render(drain));
        }
    }

    static String render(JsonNode drain) {
        StringBuilder out = new StringBuilder();
        out.append(String.format(Locale.ROOT, "%s to %s, at most %d at once: %s%n", drain.path("id").asText(),
                drain.path("destination").asText(), drain.path("maxParallel").asInt(), drain.path("state").asText()));
        out.append(String.format(Locale.ROOT, "%-16s %-10s %-18s %-12s %10s %10s  %s%n", "VM", "STATE", "MIGRATION", "PHASE",
                "SENT", "LEFT", "ERROR"));
        for (JsonNode vm : drain.path("vms")) {
            out.append(String.format(Locale.ROOT, "%-16s %-10s %-18s %-12s %10s %10s  %s%n", vm.path("vm").asText(),
                    vm.path("state").asText(), vm.path("migration").isNull() ? "-" : vm.path("migration").asText(),
                    vm.path("phase").isNull() ? "-" : vm.path("phase").asText(), Progress.bytes(vm.path("transferredBytes").asLong()),
                    Progress.bytes(vm.path("remainingBytes").asLong()), vm.path("error").isNull() ? ""
                            : vm.path("error").path("code").asText() + ": " + vm.path("error").path("message").asText()));
        }
        JsonNode summary = drain.path("summary");
        int total = summary.path("total").asInt();
        out.append(String.format(Locale.ROOT, "%d VM%s: %d completed, %d failed, %d cancelled, %d migrating, %d pending%n",
                total, total == 1 ? "" : "s", summary.path("completed").asInt(), summary.path("failed").asInt(),
                summary.path("cancelled").asInt(), summary.path("migrating").asInt(), summary.path("pending").asInt()));
        return out.toString();
    }
}
