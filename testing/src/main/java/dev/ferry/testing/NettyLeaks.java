package dev.ferry.testing;

import java.util.List;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;

/**
 * Fails a test class after which Netty reported a leaked buffer. The launcher-session half installs
 * recording leak detectors before any buffer class loads; the extension half (auto-detected) checks
 * after each test class. Both do nothing in a module without Netty.
 */
public final class NettyLeaks implements LauncherSessionListener, AfterAllCallback {
    private static final boolean NETTY = present("io.netty.util.ResourceLeakDetectorFactory");

    @Override
    public void launcherSessionOpened(LauncherSession session) {
        if (NETTY) {
            RecordingLeakDetectorFactory.install();
        }
    }

    @Override
    public void afterAll(ExtensionContext context) {
        if (!NETTY) {
            return;
        }
        List<String> leaks = RecordingLeakDetectorFactory.collect();
        if (!leaks.isEmpty()) {
            throw new AssertionError(leaks.size() + " Netty buffer leak(s) reported after " + context.getDisplayName()
                    + ":\n" + String.join("\n", leaks));
        }
    }

    private static boolean present(String className) {
        try {
            Class.forName(className, false, NettyLeaks.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }
}
