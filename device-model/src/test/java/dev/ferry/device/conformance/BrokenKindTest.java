package dev.ferry.device.conformance;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.DeviceKind;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The kit catches a kind that breaks a rule on purpose, names the rule, and shows the writes. */
class BrokenKindTest {

    @Test
    void w9ALyingRegisterSizeIsReportedAsW9AndOnlyW9() {
        Report report = new ConformanceKit(List.of(new DeviceKind(new LyingKind()))).run();

        assertThat(report.allHeld()).isFalse();
        assertThat(report.violations()).extracting(Verdict::rule).containsExactly(Rule.W9);
        Verdict.Violated w9 = report.violations().get(0);
        assertThat(w9.kind()).isEqualTo("lying");
        assertThat(w9.problem()).contains("stopCopyBytes predicted").contains("streamed");
        assertThat(w9.writes()).startsWith("reset").contains("state SAVING (2) -> ok").contains("read to the end");
        assertThat(report.lines()).hasSize(Rule.values().length)
                .anySatisfy(line -> assertThat(line).startsWith("W9   lying      VIOLATED: stopCopyBytes predicted"));
        assertThat(report.junitXml()).contains("name=\"W9 lying\"").contains("<failure message=\"W9: stopCopyBytes predicted")
                .contains("name=\"D1 lying\"");
        assertThat(report.summary()).startsWith("conformance: 23 held, 1 violated, 1 skipped (W9 lying)");
    }
}
