package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** docs/openapi.yaml passes Redocly's lint (its recommended rules, src/test/lint/redocly.yaml) with no error and no warning. */
class OpenApiLintTest {
    private static final Path DOCUMENT = Path.of("docs", "openapi.yaml").toAbsolutePath();

    @Test
    void redoclyFindsNothing() throws Exception {
        ExternalTool.Result lint = LintTools.node("node_modules/@redocly/cli/bin/cli.js", "lint", "--config", "redocly.yaml",
                "--format=stylish", DOCUMENT.toString());
        assertThat(lint.exitCode()).as(lint.output()).isZero();
        assertThat(lint.output()).as(lint.output()).contains("Your API description is valid");
        // Each problem is a line "LINE:COLUMN  error|warning  RULE  MESSAGE" (on Node 20 the tool also
        // prints a notice about Node's end of life, which is no finding about the document).
        assertThat(lint.output().lines()).as(lint.output()).noneMatch(line -> line.matches("\\s*\\d+:\\d+\\s+(error|warning)\\s.*"));
        assertThat(lint.output()).doesNotContain("You have ");
    }
}
