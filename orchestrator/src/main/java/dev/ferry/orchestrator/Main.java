package dev.ferry.orchestrator;

import com.google.inject.CreationException;
import com.google.inject.ProvisionException;
import dev.ferry.orchestrator.bench.Bench;
import dev.ferry.orchestrator.cli.Ctl;
import dev.ferry.orchestrator.config.ConfigLoader;
import dev.ferry.orchestrator.config.FerrydConfig;
import dev.ferry.orchestrator.demo.Demo;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code ferryd [flags]} runs the daemon; {@code ferryd ctl ...} is the command-line client;
 * {@code ferryd demo} runs a pair of daemons and migrates two VMs between them; {@code ferryd bench}
 * measures the performance targets.
 */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) {
        List<String> arguments = Arrays.asList(args);
        if (!arguments.isEmpty() && arguments.get(0).equals("ctl")) {
            System.exit(Ctl.run(arguments.subList(1, arguments.size()), System.out, System.err));
        }
        if (!arguments.isEmpty() && arguments.get(0).equals("demo")) {
            System.exit(Demo.run(arguments.subList(1, arguments.size()), System.out, System.err));
        }
        if (!arguments.isEmpty() && arguments.get(0).equals("bench")) {
            System.exit(Bench.run(arguments.subList(1, arguments.size()), System.out, System.err));
        }
        if (arguments.contains("--help") || arguments.contains("-h")) {
            System.out.print(ConfigLoader.USAGE);
            return;
        }
        System.exit(daemon(arguments, System.out, System.err));
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
    static int daemon(List<String> arguments, PrintStream out, PrintStream err) {
        FerrydConfig config;
        try {
            config = ConfigLoader.load(arguments);
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
                daemon.stop();
                log.info("stopped");
                stopped.countDown();
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
