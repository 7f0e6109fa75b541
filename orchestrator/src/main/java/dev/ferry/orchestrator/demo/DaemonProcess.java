package dev.ferry.orchestrator.demo;

import dev.ferry.orchestrator.Main;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A {@code ferryd} child process on ephemeral loopback ports, started with this JVM's class path, for
 * the demo and the benchmarks. Its stdout (the listening line) and stderr (its log) go to files.
 */
public final class DaemonProcess implements AutoCloseable {
    private static final Pattern LISTENING = Pattern.compile("ferryd listening http=(\\S+) migration=(\\S+)");

    private final String name;
    private final Process process;
    private final String http;
    private final String migration;
    private final Path log;

    private DaemonProcess(String name, Process process, String http, String migration, Path log) {
        this.name = name;
        this.process = process;
        this.http = http;
        this.migration = migration;
        this.log = log;
    }

    /** CPU time the daemon has used so far, where the platform reports it. */
    public java.util.Optional<java.time.Duration> cpuTime() {
        return process.info().totalCpuDuration();
    }

    /**
     * Starts a daemon and waits for its listening line.
     *
     * @param jvmOptions options for the child JVM, such as {@code -Xmx256m}; {@code {daemon}} in them
     *     becomes this daemon's name, so that each daemon can write its own flight recording
     */
    public static DaemonProcess start(String name, Path dir, Path tokenFile, List<String> jvmOptions)
            throws IOException, InterruptedException {
        return start(name, dir, tokenFile, jvmOptions, List.of(), "127.0.0.1:0", "127.0.0.1:0", List.of());
    }

    /**
     * Starts a daemon as {@link #start(String, Path, Path, List)} does, its command run through {@code launcher}
     * (such as {@code ip netns exec NAME}, which execs the JVM in place), listening where given and with
     * {@code daemonArgs} after its own.
     */
    public static DaemonProcess start(String name, Path dir, Path tokenFile, List<String> jvmOptions, List<String> launcher,
                                      String http, String migration, List<String> daemonArgs)
            throws IOException, InterruptedException {
        String java = ProcessHandle.current().info().command().orElse("java");
        Path out = dir.resolve(name + ".out");
        Path log = dir.resolve(name + ".log");
        List<String> command = new ArrayList<>(launcher);
        command.add(java);
        if (Runtime.version().feature() >= 22) {
            // Netty loads its native transport; ferryd.jar's manifest says so for 'java -jar', this for a class path.
            command.add("--enable-native-access=ALL-UNNAMED");
        }
        jvmOptions.forEach(option -> command.add(option.replace("{daemon}", name)));
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "--http", http, "--migration", migration, "--token-file", tokenFile.toString()));
        command.addAll(daemonArgs);
        Process process = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(log.toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline && process.isAlive()) {
            for (String line : Files.readAllLines(out, StandardCharsets.UTF_8)) {
                Matcher matcher = LISTENING.matcher(line);
                if (matcher.matches()) {
                    return new DaemonProcess(name, process, matcher.group(1), matcher.group(2), log);
                }
            }
            TimeUnit.MILLISECONDS.sleep(50);
        }
        process.destroyForcibly();
        throw new IOException("the " + name + " daemon did not start; see " + log);
    }

    public String name() {
        return name;
    }

    /** The control API, {@code HOST:PORT}. */
    public String http() {
        return http;
    }

    /** The migration listener, {@code HOST:PORT}. */
    public String migration() {
        return migration;
    }

    public Path log() {
        return log;
    }

    /** The daemon's resident memory now, from {@code /proc} (-1 where there is none, or once it ended). */
    public long residentBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(process.pid()), "status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    /** SIGTERM, and the exit status (-1 if it had to be killed). */
    public int stop() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            return -1;
        }
        return process.exitValue();
    }

    /** {@link #stop()} if it still runs; interrupted, it kills the daemon and keeps the interrupt. */
    @Override
    public void close() {
        if (process.isAlive()) {
            try {
                stop();
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }
}
