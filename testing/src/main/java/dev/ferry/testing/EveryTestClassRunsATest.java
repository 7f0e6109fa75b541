package dev.ferry.testing;

import org.junit.platform.commons.JUnitException;
import org.junit.platform.engine.DiscoverySelector;
import org.junit.platform.engine.SelectorResolutionResult;
import org.junit.platform.engine.UniqueId;
import org.junit.platform.engine.discovery.ClassSelector;
import org.junit.platform.launcher.LauncherDiscoveryListener;

/**
 * Fails test discovery for a class the build selected as a test class (surefire selects
 * {@code *Test}, failsafe {@code *IT}) in which the engine found nothing to run: a forgotten {@code @Test}, a private test
 * method, a misplaced annotation. Without this such a class passes silently.
 *
 * <p>Registered through {@code META-INF/services}, so every module that has this artifact on its
 * test class path gets the rule.
 */
public final class EveryTestClassRunsATest implements LauncherDiscoveryListener {

    @Override
    public void selectorProcessed(UniqueId engineId, DiscoverySelector selector, SelectorResolutionResult result) {
        if (!(selector instanceof ClassSelector)) {
            return;
        }
        String className = ((ClassSelector) selector).getClassName();
        if (result.getStatus() == SelectorResolutionResult.Status.UNRESOLVED && (className.endsWith("Test") || className.endsWith("IT"))) {
            throw new JUnitException("test class " + className + " runs no test (engine " + engineId
                    + " found none): add @Test to its test methods, or rename it if it is not a test class");
        }
    }
}
