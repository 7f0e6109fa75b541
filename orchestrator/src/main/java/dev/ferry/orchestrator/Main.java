package dev.ferry.orchestrator;

import com.google.inject.CreationException;
import com.google.inject.ProvisionException;
import dev.ferry.orchestrator.cli.Problems;
import dev.ferry.orchestrator.config.ConfigLoader;
import dev.ferry.orchestrator.config.DaemonOptions;
import dev.ferry.orchestrator.config.FerrydConfig;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;

/**
 * {@code ferryd [flags]} runs the daemon; {@code ferryd ctl ...} is the command-line client;
 * {@code ferryd demo} runs a pair of daemons and migrates two VMs between them; {@code ferryd bench}
 * measures the performance targets; {@code ferryd completion} prints a bash completion script. One
 * parser for all of them ({@link FerrydCommand} and the classes it lists), with one convention: exit
 * status 2 and the command's usage on stderr for a usage error, 0 with the usage on stdout for
 * {@code --help}.
 */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs one command line to its end and returns its exit status. */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        return commandLine(out, err).execute(args);
    }

    /** The parser of every command, printing to {@code out} and {@code err}. */
    public static CommandLine commandLine(PrintStream out, PrintStream err) {
        CommandLine line = new CommandLine(new FerrydCommand(out, err));
        line.setOut(new PrintWriter(new java.io.OutputStreamWriter(out, StandardCharsets.UTF_8), true));
        line.setErr(new PrintWriter(new java.io.OutputStreamWriter(err, StandardCharsets.UTF_8), true));
        line.setCaseInsensitiveEnumValuesAllowed(true);
        line.setUsageHelpWidth(100);
        line.setParameterExceptionHandler(Main::usageError);
        line.setExecutionExceptionHandler((e, command, parsed) -> {
            command.getErr().println(command.getCommandSpec().qualifiedName() + ": " + Problems.describe(e));
            LoggerFactory.getLogger(Main.class).debug("{} failed", command.getCommandSpec().qualifiedName(), e);
            return 1;
        });
        headings(line);
        return line;
    }

    /** "usage: ferryd ..." in every command's help, as the docs and scripts have it. */
    private static void headings(CommandLine line) {
        line.getCommandSpec().usageMessage().synopsisHeading("usage: ");
        line.getSubcommands().values().forEach(Main::headings);
    }

    /** A usage error: one line saying what is wrong, then the usage of the command it was in; exit 2. */
    private static int usageError(CommandLine.ParameterException e, String[] args) {
        CommandLine failed = e.getCommandLine();
        PrintWriter err = failed.getErr();
        String message = e.getMessage();
        if (e instanceof CommandLine.UnmatchedArgumentException unmatched && !unmatched.getUnmatched().isEmpty()) {
            String first = unmatched.getUnmatched().get(0);
            message = (first.startsWith("-") ? "unknown option " : failed.getSubcommands().isEmpty() ? "unexpected argument "
                    : "unknown command ") + first;
        }
        err.println(failed.getCommandSpec().qualifiedName() + ": " + message);
        failed.usage(err);
        err.flush();
        return 2;
    }

    /**
     * One line saying why the daemon could not start: the failure itself, without the injector's report
     * around it (which names every object that needed the failed one, each with a stack trace) or the
     * wrappers that only carry it.
     */
    static String reason(Throwable failure) {
        Throwable cause = failure;
        while (true) {
            Throwable inner = cause instanceof CreationException creation ? firstCause(creation.getErrorMessages())
                    : cause instanceof ProvisionException provision ? firstCause(provision.getErrorMessages())
                    : cause instanceof java.io.UncheckedIOException || cause.getMessage() == null
                            || (cause.getCause() != null && cause.getMessage().equals(cause.getCause().toString())) ? cause.getCause()
                    : null;
            if (inner == null || inner == cause) {
                break;
            }
            cause = inner;
        }
        String message = cause.getMessage() == null ? cause.toString() : cause.getMessage();
        return message.lines().findFirst().orElse(cause.toString());
    }

    private static Throwable firstCause(java.util.Collection<com.google.inject.spi.Message> messages) {
        return messages.stream().map(com.google.inject.spi.Message::getCause).filter(java.util.Objects::nonNull).findFirst()
                .orElse(null);
    }

    /** Runs the daemon until SIGTERM or SIGINT; returns the exit code. */
    static int daemon(DaemonOptions options, PrintStream out, PrintStream err) {
        FerrydConfig config;
        try {
            config = ConfigLoader.load(options);
        } catch (ConfigLoader.ConfigException e) {
            err.println("ferryd: " + e.getMessage());
            return 2;
        }
        Logger log = LoggerFactory.getLogger(Main.class);
        Ferryd daemon;
        try {
            daemon = Ferryd.start(config);
        } catch (Exception e) {
            err.println("ferryd: cannot start: " + reason(e));
            log.debug("start failed", e);
            return 1;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        java.util.concurrent.atomic.AtomicBoolean stopping = new java.util.concurrent.atomic.AtomicBoolean();
        // Once, whether a signal or the JVM's exit asks first.
        Runnable shutdown = () -> {
            if (stopping.compareAndSet(false, true)) {
                log.info("stopping: cancelling running migrations");
                try {
                    daemon.stop();
                    log.info("stopped");
                } finally {
                    // Whatever stopping threw, the process ends: nothing waits for a stop that will not come.
                    stopped.countDown();
                }
            }
        };
        Signals.onTermination(() -> {
            shutdown.run();
            System.exit(0);
        });
        Runtime.getRuntime().addShutdownHook(new Thread(shutdown, "ferry-shutdown"));
        out.println("ferryd listening http=" + daemon.http() + " migration=" + daemon.migration());
        out.flush();
        log.info("ferryd {} listening: API on {}, migrations on {}{}{}", Version.current(), daemon.http(), daemon.migration(),
                config.hasToken() ? ", token required" : "", config.tlsDir() != null ? ", mutual TLS" : "");
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return 0;
    }
}
