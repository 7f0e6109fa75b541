package dev.ferry.orchestrator.bench;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.orchestrator.config.ConfigLoader;
import dev.ferry.orchestrator.demo.Demo;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code ferryd demo} and {@code ferryd bench} refuse what they do not know before starting any daemon. */
class ToolArgumentsTest {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private int demo(String... args) {
        return Demo.run(List.of(args), print(out), print(err));
    }

    private int bench(String... args) {
        return Bench.run(List.of(args), print(out), print(err));
    }

    private static PrintStream print(ByteArrayOutputStream to) {
        return new PrintStream(to, true, StandardCharsets.UTF_8);
    }

    private String text(ByteArrayOutputStream stream) {
        return stream.toString(StandardCharsets.UTF_8);
    }

    @Test
    void demoRejectsAnUnknownOption() {
        assertThat(demo("--quik")).isEqualTo(2);
        assertThat(text(err)).contains("unknown option --quik").contains("usage: ferryd demo [--quick]");
        assertThat(text(out)).isEmpty();
    }

    @Test
    void demoPrintsItsUsage() {
        assertThat(demo("--help")).isZero();
        assertThat(text(out)).startsWith("usage: ferryd demo");
    }

    @Test
    void benchRejectsUnknownOptionsNamesAndMissingValues() {
        assertThat(bench("--fast")).isEqualTo(2);
        assertThat(text(err)).contains("unknown option --fast");

        err.reset();
        assertThat(bench("--only", "zero,latency")).isEqualTo(2);
        assertThat(text(err)).contains("no benchmark named latency").contains("--only throughput,zero,downtime,devices,api");

        err.reset();
        assertThat(bench("--quick", "--daemon-jvm")).isEqualTo(2);
        assertThat(text(err)).contains("--daemon-jvm needs an argument");
        assertThat(text(out)).isEmpty();
    }

    @Test
    void theDaemonsUsageListsBothToolsAsTheyParse() {
        for (String usage : List.of(Demo.USAGE, Bench.USAGE)) {
            assertThat(ConfigLoader.USAGE).contains(usage.substring("usage: ".length()).strip());
        }
    }

    @Test
    void benchPrintsItsUsage() {
        assertThat(bench("-h")).isZero();
        assertThat(text(out)).startsWith("usage: ferryd bench");
    }
}
