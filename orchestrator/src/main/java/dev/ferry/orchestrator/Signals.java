package dev.ferry.orchestrator;

import java.lang.reflect.Proxy;
import org.slf4j.LoggerFactory;

/**
 * SIGTERM and SIGINT: the daemon shuts down gracefully and exits 0, as its contract says, instead of
 * with the JVM's default status for a signal. The JDK's signal API ({@code sun.misc.Signal}, module
 * {@code jdk.unsupported}) is reached reflectively: where it is missing, the shutdown hook still stops
 * the daemon.
 */
final class Signals {
    private Signals() {
    }

    static void onTermination(Runnable handler) {
        try {
            Class<?> signalType = Class.forName("sun.misc.Signal");
            Class<?> handlerType = Class.forName("sun.misc.SignalHandler");
            Object proxy = Proxy.newProxyInstance(Signals.class.getClassLoader(), new Class<?>[] {handlerType},
                    (self, method, args) -> {
                        if (method.getName().equals("handle")) {
                            handler.run();
                        }
                        return null;
                    });
            for (String name : new String[] {"TERM", "INT"}) {
                Object signal = signalType.getConstructor(String.class).newInstance(name);
                signalType.getMethod("handle", signalType, handlerType).invoke(null, signal, proxy);
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            LoggerFactory.getLogger(Signals.class).warn("no signal handling ({}); SIGTERM exits through the shutdown hook", e.toString());
        }
    }
}
