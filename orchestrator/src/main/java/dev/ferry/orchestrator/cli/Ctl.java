package dev.ferry.orchestrator.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.FerrydCommand;
import dev.ferry.orchestrator.api.Json;
import dev.ferry.orchestrator.config.ConfigLoader;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;

/**
 * {@code ferryd ctl}: the control API from a shell. Exit status 0 on success, 1 when the daemon
 * answered with an error (printed as {@code code: message}), could not be reached, or a watched
 * migration or drain did not complete, 2 for usage errors and for input the command cannot read (a
 * missing {@code --file} or token file).
 *
 * <p>{@code --output json} prints the API's JSON instead of the text rendering, on every command: a
 * resource as the API answers it, a watch as one JSON object per line (each event's state), an API
 * error as the API's error object on stderr. A command whose answer has no body ({@code vm delete},
 * 204) prints nothing in JSON.
 */
@Command(name = "ctl", description = "The control API of a daemon from a shell (also deploy/bin/ferryctl).",
        subcommands = {Ctl.Health.class, VmCommands.class, MigrationCommands.Migrate.class, MigrationCommands.class,
                DrainCommand.class},
        footer = {"", "--api defaults to 127.0.0.1:7070. Exit status: 0 done, 1 the daemon refused or a watched migration or"
                + " drain did not complete, 2 usage or unreadable input."})
public final class Ctl implements Callable<Integer> {
    /** How results are printed. */
    public enum Output { TEXT, JSON }

    @ParentCommand
    private FerrydCommand ferryd;

    @Spec
    private CommandSpec spec;

    @Option(names = "--api", paramLabel = "HOST:PORT", scope = ScopeType.INHERIT, description = "the daemon's control API")
    private String address = "127.0.0.1:7070";

    @Option(names = "--token-file", paramLabel = "FILE", scope = ScopeType.INHERIT, description = "its bearer token")
    private Path tokenFile;

    @Option(names = {"-o", "--output"}, paramLabel = "text|json", scope = ScopeType.INHERIT,
            description = "text (default) or json: the API's JSON as answered")
    private Output output = Output.TEXT;

    @Option(names = {"-h", "--help"}, usageHelp = true, scope = ScopeType.INHERIT, description = "this help")
    private boolean help;

    private ApiClient api;

    @Override
    public Integer call() {
        throw new CommandLine.ParameterException(spec.commandLine(), "no command");
    }

    /** A command that needs input it cannot read: a usage error (2), not the daemon's. */
    static final class InputError extends Exception {
        InputError(String message) {
            super(message);
        }
    }

    /** What a command does once its arguments are parsed; returns the exit status. */
    @FunctionalInterface
    interface Action {
        int run() throws Exception;
    }

    PrintStream out() {
        return ferryd.out();
    }

    PrintStream err() {
        return ferryd.err();
    }

    boolean json() {
        return output == Output.JSON;
    }

    String address() {
        return address;
    }

    /** The daemon's API, with the token read once. */
    ApiClient api() throws InputError {
        if (api == null) {
            String token = null;
            if (tokenFile != null) {
                try {
                    token = new String(ConfigLoader.readToken(tokenFile), StandardCharsets.UTF_8);
                } catch (ConfigLoader.ConfigException e) {
                    throw new InputError(e.getMessage());
                }
            }
            api = new ApiClient(address, token);
        }
        return api;
    }

    /**
     * Runs a command and turns what can go wrong into a line on stderr and the exit status: the
     * daemon's refusal ({@code code: message}, 1), a daemon that cannot be reached (1), input that
     * cannot be read (2).
     */
    int run(Action action) {
        try {
            return action.run();
        } catch (InputError e) {
            err().println("ferryd ctl: " + e.getMessage());
            return 2;
        } catch (ApiClient.ApiError e) {
            if (json()) {
                err().println(e.body().isTextual() ? e.body().asText() : e.body().toString());
            } else {
                err().println(e.code() + ": " + e.getMessage());
            }
            return 1;
        } catch (IOException | UncheckedIOException e) {
            err().println("ferryd ctl: cannot reach the daemon at " + address + ": " + Problems.describe(e));
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        } catch (CommandLine.ParameterException e) {
            throw e;
        } catch (Exception e) {
            err().println("ferryd ctl: " + Problems.describe(e));
            return 1;
        }
    }

    /** Prints a resource as the API answered it (both outputs: the text rendering of one resource is its JSON). */
    void print(JsonNode node) throws IOException {
        if (node == null || node.isNull() || node.isMissingNode()) {
            return;
        }
        out().println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(node));
    }

    /** One state of a stream in JSON output: one object per line, so that line-oriented tools can follow it. */
    void printLine(JsonNode node) throws IOException {
        out().println(Json.mapper().writeValueAsString(node));
        out().flush();
    }

    /** A subcommand's parent {@code ctl}, found from any depth. */
    static Ctl of(CommandSpec spec) {
        CommandSpec at = spec;
        while (at != null && !(at.userObject() instanceof Ctl)) {
            at = at.parent();
        }
        if (at == null) {
            throw new IllegalStateException(spec.qualifiedName() + " is not under ctl");
        }
        return (Ctl) at.userObject();
    }

    /** {@code ctl health}. */
    @Command(name = "health", description = "The daemon's health, version and protocol version.")
    static final class Health implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Override
        public Integer call() {
            Ctl ctl = of(spec);
            return ctl.run(() -> {
                ctl.print(ctl.api().get("/v1/health"));
                return 0;
            });
        }
    }

    /** A group of commands called without one of them: a usage error naming them. */
    static CommandLine.ParameterException missingCommand(CommandSpec spec) {
        return new CommandLine.ParameterException(spec.commandLine(), spec.name() + " needs a command: "
                + String.join(", ", spec.subcommands().keySet()));
    }
}
