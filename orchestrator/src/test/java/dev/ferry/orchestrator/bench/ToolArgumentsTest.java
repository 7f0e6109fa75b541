package dev.ferry.orchestrator.bench;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.orchestrator.Main;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * Every command parses with the one parser: {@code --help} prints the command's usage on stdout and
 * exits 0; an unknown option, a missing value or a bad name prints what is wrong and the usage on
 * stderr and exits 2, before anything starts (no daemon, no connection).
 */
class ToolArgumentsTest {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private int ferryd(String... args) {
        out.reset();
        err.reset();
        return Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    private String out() {
        return out.toString(StandardCharsets.UTF_8);
    }

    private String err() {
        return err.toString(StandardCharsets.UTF_8);
    }

    @Test
    void demoRejectsAnUnknownOption() {
        assertThat(ferryd("demo", "--quik")).isEqualTo(2);
        assertThat(err()).startsWith("ferryd demo: unknown option --quik").contains("usage: ferryd demo").contains("--quick");
        assertThat(out()).isEmpty();
    }

    @Test
    void demoPrintsItsUsage() {
        assertThat(ferryd("demo", "--help")).isZero();
        assertThat(out()).startsWith("usage: ferryd demo").contains("--quick");
        assertThat(err()).isEmpty();
    }

    @Test
    void benchRejectsUnknownOptionsNamesAndMissingValues() {
        assertThat(ferryd("bench", "--fast")).isEqualTo(2);
        assertThat(err()).contains("unknown option --fast").contains("usage: ferryd bench");

        assertThat(ferryd("bench", "--only", "zero,latency")).isEqualTo(2);
        assertThat(err()).contains("no benchmark named latency").contains("zero, setup, throughput, shaped, downtime, devices, device-heavy, device-channels, api");

        assertThat(ferryd("bench", "--quick", "--daemon-jvm")).isEqualTo(2);
        assertThat(err()).contains("--daemon-jvm").contains("usage: ferryd bench");
        assertThat(out()).isEmpty();
    }

    @Test
    void benchPrintsItsUsage() {
        assertThat(ferryd("bench", "-h")).isZero();
        assertThat(out()).startsWith("usage: ferryd bench").contains("--only").contains("--daemon-jvm");
    }

    @Test
    void inspectPrintsItsUsageAndRejectsAnUnknownOption() {
        assertThat(ferryd("inspect", "--help")).isZero();
        assertThat(out()).startsWith("usage: ferryd inspect").contains("--diff").contains("--output").contains("Exit status");
        assertThat(ferryd("inspect", "a.fcap", "--dif", "b.fcap")).isEqualTo(2);
        assertThat(err()).startsWith("ferryd inspect: unknown option --dif").contains("usage: ferryd inspect");
    }

    @Test
    void theDaemonsUsageListsItsFlagsAndEveryCommand() {
        assertThat(ferryd("--help")).isZero();
        assertThat(out()).startsWith("usage: ferryd");
        for (String flag : new String[] {"--http", "--migration", "--token-file", "--tls-dir", "--memory-pool-bytes", "--device-kinds",
                "--capture-dir", "--config", "--insecure"}) {
            assertThat(out()).contains(flag);
        }
        for (String command : new String[] {"ctl", "demo", "bench", "inspect", "completion", "help"}) {
            assertThat(out()).containsPattern("(?m)^\\s+" + command + "\\s");
        }
        assertThat(ferryd("help", "ctl")).isZero();
        assertThat(out()).startsWith("usage: ferryd ctl");
    }

    @Test
    void anUnknownDaemonFlagIsAUsageError() {
        assertThat(ferryd("--port", "1")).isEqualTo(2);
        assertThat(err()).startsWith("ferryd: unknown option --port").contains("usage: ferryd");
        assertThat(ferryd("--http")).isEqualTo(2);
        assertThat(err()).contains("--http").contains("usage: ferryd");
        assertThat(out()).isEmpty();
    }

    @Test
    void ctlUsageErrorsNameTheCommandTheyAreIn() {
        assertThat(ferryd("ctl", "vm", "list", "--fast")).isEqualTo(2);
        assertThat(err()).startsWith("ferryd ctl vm list: unknown option --fast").contains("usage: ferryd ctl vm list");
        assertThat(ferryd("ctl", "vm")).isEqualTo(2);
        assertThat(err()).startsWith("ferryd ctl vm: vm needs a command: create, list");
        assertThat(ferryd("ctl", "--output", "yaml", "health")).isEqualTo(2);
        assertThat(err()).contains("--output").contains("yaml");
        assertThat(ferryd("ctl", "migration", "set", "mig-1")).isEqualTo(2);
        assertThat(err()).contains("needs --max-bandwidth, --downtime-limit-ms or both");
        assertThat(ferryd("ctl", "drain")).isEqualTo(2);
        assertThat(err()).startsWith("ferryd ctl drain: drain needs --to HOST:PORT, or one of show, watch, cancel");
    }

    /** bash itself loads the script and completes from it: commands, then a command's options. */
    @Test
    void theCompletionScriptCompletesCommandsAndOptionsInBash() throws Exception {
        assertThat(ferryd("completion")).isZero();
        String script = out();
        assertThat(script).contains("complete -F").contains("ferryd").contains("ferryctl");
        java.nio.file.Path file = java.nio.file.Files.createTempFile("ferryd-completion", ".bash");
        try {
            java.nio.file.Files.writeString(file, script);
            String probe = "source " + file + "\n"
                    + "COMP_WORDS=(ferryd ''); COMP_CWORD=1; COMP_LINE='ferryd '; COMP_POINT=${#COMP_LINE}; _complete_ferryd ferryd '' ferryd;"
                    + " echo \"ferryd: ${COMPREPLY[*]}\"\n"
                    + "COMP_WORDS=(ferryctl migrate vm1 --); COMP_CWORD=3; COMP_LINE='ferryctl migrate vm1 --'; COMP_POINT=${#COMP_LINE};"
                    + " _complete_ferryctl ferryctl -- vm1; echo \"ferryctl: ${COMPREPLY[*]}\"\n";
            Process bash = new ProcessBuilder("bash", "-c", probe).redirectErrorStream(true).start();
            String output = new String(bash.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(bash.waitFor()).as(output).isZero();
            assertThat(output).containsPattern("ferryd: .*\\bctl\\b").containsPattern("ferryd: .*\\bcompletion\\b");
            assertThat(output).containsPattern("ferryctl: .*--to\\b").containsPattern("ferryctl: .*--max-bandwidth\\b");
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
    }
}
