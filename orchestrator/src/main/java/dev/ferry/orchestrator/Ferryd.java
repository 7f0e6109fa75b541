package dev.ferry.orchestrator;

import com.google.inject.Guice;
import com.google.inject.Injector;
import com.google.inject.Module;
import com.google.inject.Stage;
import com.google.inject.util.Modules;
import dev.ferry.orchestrator.api.ApiServer;
import dev.ferry.orchestrator.config.Endpoint;
import dev.ferry.orchestrator.config.FerrydConfig;
import dev.ferry.orchestrator.transport.MigrationTransport;
import java.util.List;

/** A running daemon: its object graph, started; {@link #stop()} stops it in reverse order. */
public final class Ferryd implements AutoCloseable {
    private final Injector injector;
    private final Lifecycle lifecycle;

    private Ferryd(Injector injector) {
        this.injector = injector;
        this.lifecycle = injector.getInstance(Lifecycle.class);
    }

    static {
        // The module uses no method interception, so Guice needs no generated classes; without them
        // it also stays off sun.misc.Unsafe, which newer JDKs warn about and will refuse.
        if (System.getProperty("guice_bytecode_gen_option") == null) {
            System.setProperty("guice_bytecode_gen_option", "DISABLED");
        }
    }

    /** Builds and starts a daemon; returns once both listeners are bound. */
    public static Ferryd start(FerrydConfig config) throws Exception {
        return start(config, List.of());
    }

    /**
     * Builds and starts a daemon whose bindings {@code overrides} replace (a test's flow hooks, say);
     * returns once both listeners are bound.
     */
    public static Ferryd start(FerrydConfig config, List<Module> overrides) throws Exception {
        Module module = overrides.isEmpty() ? new FerrydModule(config) : Modules.override(new FerrydModule(config)).with(overrides);
        Ferryd daemon = new Ferryd(Guice.createInjector(Stage.PRODUCTION, module));
        daemon.lifecycle.start();
        return daemon;
    }

    /** The control API's bound address. */
    public Endpoint http() {
        return Endpoint.of(injector.getInstance(ApiServer.class).address());
    }

    /** The migration listener's bound address. */
    public Endpoint migration() {
        return Endpoint.of(injector.getInstance(MigrationTransport.class).address());
    }

    /** A part of the daemon, for tests and tools in this process. */
    public <T> T get(Class<T> type) {
        return injector.getInstance(type);
    }

    /** Cancels running migrations (rolling them back), then stops everything in reverse order. */
    public void stop() {
        lifecycle.stop();
    }

    @Override
    public void close() {
        stop();
    }
}
