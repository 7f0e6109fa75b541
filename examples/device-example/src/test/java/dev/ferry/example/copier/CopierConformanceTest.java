package dev.ferry.example.copier;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.DeviceKind;
import dev.ferry.device.DeviceKinds;
import dev.ferry.device.conformance.ConformanceKit;
import dev.ferry.device.conformance.Report;
import dev.ferry.device.conformance.Rule;
import dev.ferry.device.conformance.Verdict;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The example kind passes the conformance kit; the forgetful one is caught, by the rules it breaks. */
class CopierConformanceTest {

    @Test
    void theCopierFollowsEveryRule() {
        Report report = new ConformanceKit(List.of(new DeviceKind(new CopierKind()))).run();

        assertThat(report.violations()).as(String.join("\n", report.lines())).isEmpty();
        assertThat(report.verdicts()).filteredOn(v -> v instanceof Verdict.Skipped).extracting(Verdict::rule)
                .as("a copier never re-initialises").containsExactly(Rule.W8);
    }

    @Test
    void theCopierIsFoundByServiceLoaderOnTheClassPath() throws Exception {
        DeviceKinds kinds = DeviceKinds.load(List.of());

        assertThat(kinds.names()).contains("copier", "forgetful-copier").startsWith("nic", "gpu", "serial", "crypto", "nvme");
        assertThat(kinds.of("copier").formatVersion()).isEqualTo(1);
        assertThat(kinds.of("copier").defaultPreCopy()).isTrue();
    }

    @Test
    void aCopierThatForgetsARegisterOnLoadIsCaughtByTheRoundTripRules() {
        Report report = new ConformanceKit(List.of(new DeviceKind(new ForgetfulCopierKind()))).run();

        assertThat(report.allHeld()).isFalse();
        assertThat(report.violations()).extracting(Verdict::rule).containsExactly(Rule.W2, Rule.W3, Rule.W5);
        Verdict.Violated w2 = report.violations().get(0);
        assertThat(w2.problem()).contains("digest differs").contains("saved with: reset; mmio ring base and size; mmio doorbell");
        assertThat(w2.writes()).contains("state RESUMING (4) -> ok").contains("bytes of data in chunks of").endsWith("state STOP (0) -> ok");
    }
}
