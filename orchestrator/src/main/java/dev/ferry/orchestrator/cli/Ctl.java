package dev.ferry.orchestrator.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.orchestrator.api.Json;
import dev.ferry.orchestrator.config.ConfigLoader;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code ferryd ctl}: the control API from a shell. Exit status 0 on success, 1 when the daemon
 * answered with an error (printed as {@code code: message}) or a migration did not complete, 2 for
 * usage errors.
 */
public final class Ctl {
    public static final String USAGE = """
            usage: ferryd ctl [--api HOST:PORT] [--token-file FILE] COMMAND
              health
              vm create --file VM.json        vm list            vm show VM
              vm pause VM                     vm resume VM       vm digest VM        vm delete VM
              migrate VM --to HOST:PORT [--watch] [--verify] [--channels N] [--downtime-limit-ms MS]
                        [--max-bandwidth BYTES_PER_S] [--max-iterations N] [--timeout-ms MS] [--no-auto-converge]
              migration list                  migration show ID  migration cancel ID migration watch ID
            --api defaults to 127.0.0.1:7070.
            """;

    private final ApiClient api;
    private final PrintStream out;

    private Ctl(ApiClient api, PrintStream out) {
        this.api = api;
        this.out = out;
    }

    public static int run(List<String> arguments, PrintStream out, PrintStream err) {
        List<String> args = new ArrayList<>(arguments);
        String address = "127.0.0.1:7070";
        String token = null;
        try {
            while (!args.isEmpty() && args.get(0).startsWith("--")) {
                String flag = args.remove(0);
                switch (flag) {
                    case "--api" -> address = take(args, flag);
                    case "--token-file" -> token = new String(ConfigLoader.readToken(Path.of(take(args, flag))), StandardCharsets.UTF_8);
                    case "--help" -> {
                        out.print(USAGE);
                        return 0;
                    }
                    default -> throw new Usage("unknown option " + flag);
                }
            }
            if (args.isEmpty()) {
                throw new Usage("no command");
            }
            return new Ctl(new ApiClient(address, token), out).command(args);
        } catch (Usage e) {
            err.println("ferryd ctl: " + e.getMessage());
            err.print(USAGE);
            return 2;
        } catch (ConfigLoader.ConfigException e) {
            err.println("ferryd ctl: " + e.getMessage());
            return 2;
        } catch (ApiClient.ApiError e) {
            err.println(e.code() + ": " + e.getMessage());
            return 1;
        } catch (IOException e) {
            err.println("ferryd ctl: cannot reach the daemon at " + address + ": " + e);
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        }
    }

    private static final class Usage extends Exception {
        Usage(String message) {
            super(message);
        }
    }

    private int command(List<String> args) throws Usage, IOException, InterruptedException {
        String command = args.remove(0);
        switch (command) {
            case "health" -> print(api.get("/v1/health"));
            case "vm" -> vm(args);
            case "migrate" -> {
                return migrate(args);
            }
            case "migration" -> {
                return migration(args);
            }
            default -> throw new Usage("unknown command " + command);
        }
        return 0;
    }

    private void vm(List<String> args) throws Usage, IOException, InterruptedException {
        String sub = take(args, "vm");
        switch (sub) {
            case "create" -> {
                if (!"--file".equals(take(args, "vm create"))) {
                    throw new Usage("vm create --file FILE");
                }
                print(api.post("/v1/vms", Files.readString(Path.of(take(args, "--file")), StandardCharsets.UTF_8)));
            }
            case "list" -> {
                out.printf("%-16s %-10s %10s %5s %-5s %s%n", "VM", "STATE", "MEMORY", "VCPUS", "P2P", "DEVICES");
                for (JsonNode vm : api.get("/v1/vms").path("vms")) {
                    List<String> devices = new ArrayList<>();
                    vm.path("devices").forEach(d -> devices.add(d.path("id").asText() + ":" + d.path("deviceState").asText()));
                    out.printf("%-16s %-10s %10s %5d %-5s %s%n", vm.path("id").asText(), vm.path("state").asText(),
                            Progress.bytes(vm.path("memoryBytes").asLong()), vm.path("vcpus").asInt(),
                            vm.path("p2pActive").asBoolean() ? "on" : "off", String.join(" ", devices));
                }
            }
            case "show" -> print(api.get("/v1/vms/" + take(args, "vm show")));
            case "pause", "resume" -> print(api.post("/v1/vms/" + take(args, "vm " + sub) + "/" + sub, ""));
            case "digest" -> print(api.get("/v1/vms/" + take(args, "vm digest") + "/digest"));
            case "delete" -> {
                String id = take(args, "vm delete");
                api.delete("/v1/vms/" + id);
                out.println("deleted " + id);
            }
            default -> throw new Usage("unknown vm command " + sub);
        }
    }

    private int migrate(List<String> args) throws Usage, IOException, InterruptedException {
        ObjectNode request = Json.mapper().createObjectNode();
        request.put("vm", take(args, "migrate"));
        boolean watch = false;
        while (!args.isEmpty()) {
            String flag = args.remove(0);
            switch (flag) {
                case "--to" -> request.put("destination", take(args, flag));
                case "--watch" -> watch = true;
                case "--verify" -> request.put("verify", true);
                case "--no-auto-converge" -> request.put("autoConverge", false);
                case "--channels" -> request.put("channels", number(take(args, flag)));
                case "--downtime-limit-ms" -> request.put("downtimeLimitMs", number(take(args, flag)));
                case "--max-bandwidth" -> request.put("maxBandwidthBytesPerSecond", number(take(args, flag)));
                case "--max-iterations" -> request.put("maxIterations", number(take(args, flag)));
                case "--timeout-ms" -> request.put("timeoutMs", number(take(args, flag)));
                default -> throw new Usage("unknown migrate option " + flag);
            }
        }
        if (!request.has("destination")) {
            throw new Usage("migrate needs --to HOST:PORT");
        }
        JsonNode started = api.post("/v1/migrations", request);
        if (!watch) {
            print(started);
            return 0;
        }
        return watch(started.path("id").asText());
    }

    private int migration(List<String> args) throws Usage, IOException, InterruptedException {
        String sub = take(args, "migration");
        switch (sub) {
            case "list" -> {
                out.printf("%-18s %-10s %-12s %-11s %8s %12s %10s%n", "MIGRATION", "VM", "ROLE", "PHASE", "ITERS", "BYTES", "DOWNTIME");
                for (JsonNode m : api.get("/v1/migrations").path("migrations")) {
                    out.printf("%-18s %-10s %-12s %-11s %8d %12s %10s%n", m.path("id").asText(), m.path("vm").asText(),
                            m.path("role").asText(), m.path("phase").asText(), m.path("iterations").asLong(),
                            Progress.bytes(m.path("transferredBytes").asLong()),
                            m.path("downtimeMs").isNull() ? "-" : m.path("downtimeMs").asLong() + " ms");
                }
            }
            case "show" -> print(api.get("/v1/migrations/" + take(args, "migration show")));
            case "cancel" -> print(api.delete("/v1/migrations/" + take(args, "migration cancel")));
            case "watch" -> {
                return watch(take(args, "migration watch"));
            }
            default -> throw new Usage("unknown migration command " + sub);
        }
        return 0;
    }

    /** Follows the event stream with a live progress bar; 0 when the migration completed. */
    private int watch(String id) throws IOException, InterruptedException {
        boolean terminal = System.console() != null;
        JsonNode[] last = new JsonNode[1];
        String[] phase = {""};
        api.events("/v1/migrations/" + id + "/events", (type, data) -> {
            last[0] = data;
            String line = Progress.line(data);
            if (terminal) {
                out.print("\r\033[K" + line);
            } else if (!phase[0].equals(data.path("phase").asText()) || type.equals("end")) {
                out.println(line);
            }
            phase[0] = data.path("phase").asText();
            out.flush();
            return !type.equals("end");
        });
        if (terminal) {
            out.println();
        }
        JsonNode end = last[0] == null ? api.get("/v1/migrations/" + id) : last[0];
        out.printf(Locale.ROOT, "%s %s: %s%n", id, end.path("phase").asText(), end.path("error").isNull() ? "ok"
                : end.path("error").path("code").asText() + ": " + end.path("error").path("message").asText());
        return end.path("phase").asText().equals("completed") ? 0 : 1;
    }

    private void print(JsonNode node) throws IOException {
        out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(node));
    }

    private static String take(List<String> args, String after) throws Usage {
        if (args.isEmpty()) {
            throw new Usage(after + " needs an argument");
        }
        return args.remove(0);
    }

    private static long number(String text) throws Usage {
        try {
            return Long.parseLong(text);
        } catch (NumberFormatException e) {
            throw new Usage("not a number: " + text);
        }
    }
}
