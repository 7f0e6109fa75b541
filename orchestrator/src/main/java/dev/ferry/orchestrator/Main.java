package dev.ferry.orchestrator;

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
            Throwable cause = e.getCause() != null && e.getMessage() == null ? e.getCause() : e;
            err.println("ferryd: cannot start: " + cause.getMessage());
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
