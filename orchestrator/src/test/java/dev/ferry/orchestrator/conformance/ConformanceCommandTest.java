package dev.ferry.orchestrator.conformance;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.conformance.Rule;
import dev.ferry.orchestrator.Main;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferryd conformance}: one line per rule and kind, exit 0, 1 and 2 as API.md fixes them, JUnit XML. */
class ConformanceCommandTest {
    private static final String EXAMPLE_JAR = System.getProperty("ferry.example.jar",
            "../examples/device-example/target/ferry-device-example.jar");
    private static final String EXAMPLE_TESTS_JAR = System.getProperty("ferry.example.tests.jar",
            "../examples/device-example/target/ferry-device-example-tests.jar");

    private record Run(int exit, String out, String err) {
    }

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void aBuiltInKindHoldsEveryRuleOneLineEach(@TempDir Path dir) throws Exception {
        Path xml = dir.resolve("gpu.xml");
        Run run = run("conformance", "--kind", "gpu", "--junit-xml", xml.toString());
        assertThat(run.exit()).as(run.out() + run.err()).isZero();
        List<String> lines = run.out().lines().toList();
        assertThat(lines).hasSize(Rule.values().length + 1);
        for (int i = 0; i < Rule.values().length; i++) {
            assertThat(lines.get(i)).startsWith(String.format("%-4s %-10s held: ", Rule.values()[i], "gpu"));
        }
        assertThat(lines.get(lines.size() - 1)).isEqualTo("conformance: 25 held, 0 violated, 0 skipped");
        String junit = Files.readString(xml);
        assertThat(junit).contains("<testsuite name=\"gpu\" tests=\"25\" failures=\"0\"").contains("name=\"D10 gpu\"")
                .doesNotContain("<failure");
    }

    @Test
    void theExampleKindFromItsJarHoldsEveryRuleThatApplies() {
        Run run = run("conformance", "--device-jar", EXAMPLE_JAR, "--kind", "copier");
        assertThat(run.exit()).as(run.out() + run.err()).isZero();
        assertThat(run.out()).contains("W8   copier     skipped: the kind does not re-initialise")
                .contains("conformance: 24 held, 0 violated, 1 skipped");
    }

    @Test
    void aKindThatBreaksARuleOnPurposeIsNamedWithTheRuleAndExitsOne(@TempDir Path dir) throws Exception {
        Path xml = dir.resolve("broken.xml");
        Run run = run("conformance", "--device-jar", EXAMPLE_JAR, "--device-jar", EXAMPLE_TESTS_JAR, "--kind", "forgetful-copier",
                "--junit-xml", xml.toString());
        assertThat(run.exit()).as(run.out() + run.err()).isEqualTo(1);
        assertThat(run.out().lines()).filteredOn(line -> line.contains("VIOLATED")).extracting(line -> line.substring(0, 4).trim())
                .containsExactly("W2", "W3", "W5");
        assertThat(run.out()).contains("W2   forgetful-copier VIOLATED: the twin's digest differs from the source's")
                .contains("; writes: reset; mmio ring base and size; state RESUMING (4) -> ok")
                .contains("conformance: 21 held, 3 violated, 1 skipped (W2 forgetful-copier, W3 forgetful-copier, W5 forgetful-copier)");
        assertThat(Files.readString(xml)).contains("failures=\"3\"").contains("<failure message=\"W2: the twin&apos;s digest differs");
    }

    @Test
    void usageErrorsExitTwo(@TempDir Path dir) {
        Run unknown = run("conformance", "--kind", "toaster");
        assertThat(unknown.exit()).isEqualTo(2);
        assertThat(unknown.err()).startsWith("ferryd conformance: --kind: unknown kind 'toaster' (known: nic, gpu, serial, crypto, nvme)");
        Run badJar = run("conformance", "--device-jar", dir.resolve("nope.jar").toString());
        assertThat(badJar.exit()).isEqualTo(2);
        assertThat(badJar.err()).contains("nope.jar: no such file");
        Run badOption = run("conformance", "--frobnicate");
        assertThat(badOption.exit()).isEqualTo(2);
        assertThat(badOption.err()).startsWith("ferryd conformance: unknown option --frobnicate");
    }
}
