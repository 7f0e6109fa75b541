package dev.ferry.device.conformance;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.DeviceKind;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/** The conformance kit on every built-in kind: one test per rule and kind, named as the kit names it. */
class ConformanceTest {

    @TestFactory
    Stream<DynamicTest> everyRuleHoldsForEveryBuiltInKind() {
        ConformanceKit kit = new ConformanceKit(DeviceKind.builtIn());
        return DeviceKind.builtIn().stream().flatMap(kind -> Stream.of(Rule.values()).map(rule ->
                DynamicTest.dynamicTest(rule + " " + kind, () -> {
                    Verdict verdict = kit.check(kind, rule);
                    assertThat(verdict).as(Report.line(verdict)).isNotInstanceOf(Verdict.Violated.class);
                    if (rule == Rule.W8) {
                        assertThat(verdict instanceof Verdict.Skipped).as("W8 applies only to kinds that re-initialise")
                                .isEqualTo(!kind.reinitialises());
                    }
                })));
    }
}
