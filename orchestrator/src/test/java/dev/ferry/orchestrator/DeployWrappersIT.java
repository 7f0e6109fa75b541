package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * deploy/bin's wrappers as installed by hand: reached through symlinks (one relative, one absolute),
 * they still find the jar beside their real place, and ferryctl's JVM takes FERRYCTL_JAVA_OPTS and
 * never the daemon's JAVA_OPTS.
 */
class DeployWrappersIT {
    private static final Path BIN = Path.of("..", "deploy", "bin").toAbsolutePath().normalize();
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    private ExternalTool.Result run(Path script, Map<String, String> env, String... args) throws Exception {
        ProcessBuilder builder = new ProcessBuilder(script.toString());
        builder.command().addAll(List.of(args));
        builder.environment().remove("JAVA_OPTS");
        builder.environment().remove("FERRYCTL_JAVA_OPTS");
        builder.environment().remove("FERRYD_JAR");
        builder.environment().put("JAVA", ProcessHandle.current().info().command().orElse("java"));
        builder.environment().putAll(env);
        Path output = dir.resolve("output");
        Process process = builder.directory(dir.toFile()).redirectErrorStream(true).redirectOutput(output.toFile()).start();
        assertThat(process.waitFor(TIMEOUT.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)).isTrue();
        return new ExternalTool.Result(process.exitValue(), Files.readString(output));
    }

    @Test
    void theWrappersWorkThroughSymlinksAndFerryctlKeepsItsOwnJvmOptions() throws Exception {
        // bin/ferryctl -> links/ferryctl -> deploy/bin/ferryctl: a relative link to an absolute one.
        Path links = Files.createDirectories(dir.resolve("links"));
        Files.createSymbolicLink(links.resolve("ferryctl"), BIN.resolve("ferryctl"));
        Files.createSymbolicLink(links.resolve("ferryd"), BIN.resolve("ferryd"));
        Path bin = Files.createDirectories(dir.resolve("bin"));
        Files.createSymbolicLink(bin.resolve("ferryctl"), Path.of("..", "links", "ferryctl"));
        Files.createSymbolicLink(bin.resolve("ferryd"), Path.of("..", "links", "ferryd"));

        ExternalTool.Result daemon = run(bin.resolve("ferryd"), Map.of("JAVA_OPTS", "-Xmx64m"), "--help");
        assertThat(daemon.exitCode()).as(daemon.output()).isZero();
        assertThat(daemon.output()).contains("usage: ferryd");

        // A JVM option the client's JVM would refuse: the daemon's JAVA_OPTS must not reach it.
        ExternalTool.Result client = run(bin.resolve("ferryctl"), Map.of("JAVA_OPTS", "-XX:+NoSuchFerrydOption"), "--help");
        assertThat(client.exitCode()).as(client.output()).isZero();
        assertThat(client.output()).contains("usage: ferryd ctl");

        ExternalTool.Result own = run(bin.resolve("ferryctl"), Map.of("FERRYCTL_JAVA_OPTS", "-XX:+NoSuchFerryctlOption"), "--help");
        assertThat(own.exitCode()).isNotZero();
        assertThat(own.output()).contains("NoSuchFerryctlOption");
    }
}
