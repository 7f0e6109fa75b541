package dev.ferry.orchestrator;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The Node tools of src/test/lint, installed by the build into target/lint (exec-maven-plugin runs
 * its install.sh before the tests).
 */
final class LintTools {
    static final Path DIR = Path.of("target", "lint").toAbsolutePath();
    static final Duration TIMEOUT = Duration.ofMinutes(2);
    private static final String INSTALL = "Node.js 20+ with npm on the PATH; the build installs the rest into target/lint";

    private LintTools() {
    }

    /** node and the installed packages, or the test fails (CI) or is skipped (elsewhere). */
    static Path node() {
        Path node = ExternalTool.require("node", INSTALL);
        if (!Files.isDirectory(DIR.resolve("node_modules"))) {
            ExternalTool.missing("target/lint/node_modules is missing (npm ci did not run)", INSTALL);
        }
        return node;
    }

    /** Runs {@code node SCRIPT ARGS...} in target/lint. */
    static ExternalTool.Result node(String script, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(node().toString(), script));
        command.addAll(List.of(args));
        return ExternalTool.run(DIR, TIMEOUT, null, command);
    }
}
