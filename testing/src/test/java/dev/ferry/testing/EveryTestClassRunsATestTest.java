package dev.ferry.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

class EveryTestClassRunsATestTest {

    /** Not run by the build itself: surefire does not select nested classes. */
    static class ForgottenAnnotationTest {
        void looksLikeATest() {
        }
    }

    static class PrivateTestMethodTest {
        @Test
        private void neverRuns() {
        }
    }

    static class HealthyTest {
        @Test
        void runs() {
        }
    }

    private static TestExecutionSummary run(Class<?> testClass) {
        LauncherDiscoveryRequest request = LauncherDiscoveryRequestBuilder.request()
                .selectors(selectClass(testClass))
                .configurationParameter("junit.platform.discovery.issue.severity.critical", "ERROR")
                .build();
        Launcher launcher = LauncherFactory.create();
        SummaryGeneratingListener summary = new SummaryGeneratingListener();
        launcher.execute(request, summary);
        return summary.getSummary();
    }

    @Test
    void aTestClassWithoutTestsFailsTheRun() {
        for (Class<?> empty : List.of(ForgottenAnnotationTest.class, PrivateTestMethodTest.class)) {
            TestExecutionSummary summary = run(empty);
            assertThat(summary.getTotalFailureCount()).as(empty.getSimpleName()).isEqualTo(1);
            assertThat(summary.getFailures().get(0).getException()).hasStackTraceContaining("runs no test");
        }
    }

    @Test
    void aTestClassWithATestRuns() {
        TestExecutionSummary summary = run(HealthyTest.class);
        assertThat(summary.getTotalFailureCount()).isZero();
        assertThat(summary.getTestsSucceededCount()).isEqualTo(1);
    }
}
