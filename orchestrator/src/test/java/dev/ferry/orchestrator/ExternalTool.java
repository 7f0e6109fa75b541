package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * A program from outside the JVM that a test runs (promtool, node). Where CI runs ({@code CI} set,
 * or {@code FERRY_REQUIRE_TOOLS=1}) a missing one fails the test: .ci/run installs them, and a check
 * that silently skips there checks nothing. On a developer's machine without it the test is skipped
 * and says what to install.
 */
public final class ExternalTool {
    private ExternalTool() {
    }

    public record Result(int exitCode, String output) {
    }

    /** Whether tools must be there: in CI, or when asked for. */
    public static boolean required() {
        String ci = System.getenv("CI");
        return (ci != null && !ci.isEmpty() && !ci.equalsIgnoreCase("false")) || "1".equals(System.getenv("FERRY_REQUIRE_TOOLS"));
    }

    /** The program on the PATH, or the test fails (in CI) or is skipped (elsewhere) saying {@code install}. */
    public static Path require(String name, String install) {
        Optional<Path> found = find(name);
        if (found.isPresent()) {
            return found.get();
        }
        missing(name + " is not on the PATH", install);
        throw new AssertionError("unreachable");
    }

    /** Fails (in CI) or skips (elsewhere) a test whose tool or prepared file is not there. */
    public static void missing(String what, String install) {
        if (required()) {
            fail(what + " (required where CI or FERRY_REQUIRE_TOOLS=1 is set): " + install);
        }
        Assumptions.abort(what + "; skipped outside CI: " + install);
    }

    public static Optional<Path> find(String name) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (dir.isEmpty()) {
                continue;
            }
            Path candidate = Path.of(dir, name);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }

    /**
     * Runs a command to its end (bounded by {@code timeout}) in {@code dir}, with {@code stdin} as its
     * input, and returns its exit code and what it printed on stdout and stderr together.
     */
    public static Result run(Path dir, Duration timeout, String stdin, List<String> command) throws IOException, InterruptedException {
        Path output = Files.createTempFile("ferry-tool", ".out");
        try {
            ProcessBuilder builder = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
                    .redirectOutput(output.toFile());
            Path input = null;
            if (stdin != null) {
                input = Files.createTempFile("ferry-tool", ".in");
                Files.writeString(input, stdin);
                builder.redirectInput(input.toFile());
            } else {
                builder.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
            }
            Process process = builder.start();
            try {
                if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                    process.destroyForcibly().waitFor();
                    fail(String.join(" ", command) + " did not end within " + timeout + ":\n" + Files.readString(output));
                }
            } finally {
                if (input != null) {
                    Files.deleteIfExists(input);
                }
            }
            return new Result(process.exitValue(), Files.readString(output, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(output);
        }
    }
}
