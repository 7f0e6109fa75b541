package dev.ferry.orchestrator;

import dev.ferry.orchestrator.bench.Bench;
import dev.ferry.orchestrator.capture.InspectCommand;
import dev.ferry.orchestrator.cli.Ctl;
import dev.ferry.orchestrator.conformance.ConformanceCommand;
import dev.ferry.orchestrator.config.DaemonOptions;
import dev.ferry.orchestrator.demo.Demo;
import dev.ferry.protocol.ProtocolVersion;
import java.io.PrintStream;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.IVersionProvider;
import picocli.CommandLine.Mixin;

/**
 * {@code ferryd}: with no command it runs the daemon with its flags; each command is a class of its
 * own, listed in {@code subcommands} below. A new command is one such class, annotated
 * {@code @Command(name = ...)}, that implements {@code Callable<Integer>} (its exit status: 0 done, 1
 * failed, 2 usage) and prints through {@link #out()} and {@link #err()} of the parent it gets with
 * {@code @ParentCommand FerrydCommand}; parsing, {@code --help}, usage errors (exit 2 with the usage),
 * {@code ferryd help COMMAND} and shell completion come with it.
 */
@Command(name = "ferryd", mixinStandardHelpOptions = true, versionProvider = FerrydCommand.VersionProvider.class,
        description = "Live migration of VMs with emulated VFIO devices. Without a command: the daemon, which prints"
                + " 'ferryd listening http=HOST:PORT migration=HOST:PORT' once both listeners are bound.",
        subcommands = {Ctl.class, Demo.class, Bench.class, ConformanceCommand.class, InspectCommand.class, Completion.class,
                picocli.CommandLine.HelpCommand.class},
        footer = {"", "Exit status: 0 stopped by SIGTERM or SIGINT, 1 could not start, 2 configuration or usage error."})
public final class FerrydCommand implements Callable<Integer> {
    @Mixin
    private DaemonOptions options;

    private final PrintStream out;
    private final PrintStream err;

    FerrydCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** Where commands print results (stdout of the process, or a test's stream). */
    public PrintStream out() {
        return out;
    }

    /** Where commands print errors and usage. */
    public PrintStream err() {
        return err;
    }

    @Override
    public Integer call() {
        return Main.daemon(options, out, err);
    }

    /** {@code ferryd --version}. */
    static final class VersionProvider implements IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"ferryd " + Version.current() + " (migration protocol " + ProtocolVersion.CURRENT + ")"};
        }
    }
}
