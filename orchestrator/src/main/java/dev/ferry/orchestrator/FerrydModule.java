package dev.ferry.orchestrator;

import com.google.inject.AbstractModule;
import com.google.inject.Provider;
import com.google.inject.Provides;
import com.google.inject.Singleton;
import com.google.inject.name.Named;
import dev.ferry.orchestrator.api.ApiServer;
import dev.ferry.orchestrator.api.DrainResource;
import dev.ferry.orchestrator.api.MigrationResource;
import dev.ferry.orchestrator.api.Router;
import dev.ferry.orchestrator.api.SystemResource;
import dev.ferry.orchestrator.api.UiResource;
import dev.ferry.orchestrator.api.VmResource;
import dev.ferry.orchestrator.capture.Captures;
import dev.ferry.orchestrator.config.Endpoint;
import dev.ferry.orchestrator.config.FerrydConfig;
import dev.ferry.orchestrator.drain.DrainManager;
import dev.ferry.orchestrator.metrics.FerryMetrics;
import dev.ferry.orchestrator.migration.FlowHooks;
import dev.ferry.orchestrator.migration.MigrationManager;
import dev.ferry.orchestrator.transport.MigrationTransport;
import dev.ferry.orchestrator.vm.VmManager;
import dev.ferry.protocol.capture.CaptureWriter;
import dev.ferry.protocol.net.Limits;
import dev.ferry.protocol.net.ProtocolClient;
import dev.ferry.protocol.net.ProtocolConfig;
import dev.ferry.protocol.net.TlsConfig;
import dev.ferry.protocol.net.Transport;
import io.netty.channel.EventLoopGroup;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The daemon's object graph, every binding explicit: a provider per part, built once (production
 * stage), nothing resolved by classpath scanning or just-in-time bindings.
 */
public final class FerrydModule extends AbstractModule {
    private final FerrydConfig config;

    public FerrydModule(FerrydConfig config) {
        this.config = config;
    }

    @Override
    protected void configure() {
        binder().requireExplicitBindings();
        binder().requireAtInjectOnConstructors();
        bind(FerrydConfig.class).toInstance(config);
    }

    @Provides
    @Singleton
    @Named("version")
    String version() {
        return Version.current();
    }

    @Provides
    @Singleton
    FerryMetrics metrics(@Named("version") String version, @Named("migration") EventLoopGroup migration,
                         @Named("http") EventLoopGroup http) {
        FerryMetrics metrics = new FerryMetrics(version, config.kinds().names());
        // Pending tasks per event loop: a backlog on the migration loops slows migrations, on the
        // API's loops every request.
        metrics.bindEventLoops("migration", migration);
        metrics.bindEventLoops("http", http);
        return metrics;
    }

    @Provides
    @Singleton
    @Named("http")
    EventLoopGroup httpLoops() {
        return Transport.newGroup(2, "ferry-http");
    }

    @Provides
    @Singleton
    @Named("migration")
    EventLoopGroup migrationLoops() {
        return Transport.newGroup(Math.max(2, Runtime.getRuntime().availableProcessors()), "ferry-migration-io");
    }

    @Provides
    @Singleton
    @Named("api")
    ExecutorService apiWorkers(FerrydConfig config) {
        AtomicInteger next = new AtomicInteger();
        return Executors.newFixedThreadPool(config.apiThreads(), runnable -> {
            Thread thread = new Thread(runnable, "ferry-api-" + next.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        });
    }

    @Provides
    @Singleton
    ProtocolConfig protocol(FerrydConfig config) {
        try {
            TlsConfig tls = config.tlsDir() == null ? null : TlsConfig.fromDirectory(config.tlsDir());
            FerrydConfig.Timeouts timeouts = config.timeouts();
            Limits limits = Limits.DEFAULT
                    .withKeepalive(Duration.ofMillis(timeouts.keepaliveIntervalMs()), Duration.ofMillis(timeouts.keepaliveTimeoutMs()))
                    .withHandshakeTimeout(Duration.ofMillis(timeouts.handshakeTimeoutMs()));
            return ProtocolConfig.of(config.token(), tls).withLimits(limits);
        } catch (IOException e) {
            throw new UncheckedIOException("TLS: " + e.getMessage(), e);
        }
    }

    @Provides
    @Singleton
    ProtocolClient client(ProtocolConfig protocol, @Named("migration") EventLoopGroup group) {
        return new ProtocolClient(protocol, group);
    }

    /** The daemon lets every flow through; a test overrides this binding to hold or damage one. */
    @Provides
    @Singleton
    FlowHooks hooks() {
        return FlowHooks.NONE;
    }

    @Provides
    @Singleton
    VmManager vms(FerrydConfig config, FerryMetrics metrics) {
        return new VmManager(config, metrics);
    }

    /** Captured sessions go to files in {@code --capture-dir}; a test may bind a sink of its own. */
    @Provides
    @Singleton
    Captures captures(FerrydConfig config, @Named("version") String version) {
        return new Captures(config.captureDir(), Captures.Sink.FILES, version, CaptureWriter.DEFAULT_QUEUE_BYTES);
    }

    @Provides
    @Singleton
    MigrationManager migrations(FerrydConfig config, VmManager vms, ProtocolClient client, FerryMetrics metrics, FlowHooks hooks,
                                Provider<MigrationTransport> transport, Captures captures) {
        // The listener is bound before migrations start (start order below), so its address is known by then.
        return new MigrationManager(config, vms, client, metrics, hooks, () -> Endpoint.of(transport.get().address()).toString(),
                captures);
    }

    @Provides
    @Singleton
    MigrationTransport transport(FerrydConfig config, ProtocolConfig protocol, @Named("migration") EventLoopGroup group,
                                 MigrationManager migrations) {
        return new MigrationTransport(config.migration(), protocol, group, migrations);
    }

    @Provides
    @Singleton
    DrainManager drains(VmManager vms, MigrationManager migrations) {
        return new DrainManager(vms, migrations);
    }

    @Provides
    @Singleton
    Router router(FerrydConfig config, @Named("version") String version, FerryMetrics metrics, VmManager vms,
                  MigrationManager migrations, DrainManager drains) {
        Router router = new Router();
        new SystemResource(version, metrics).register(router);
        new VmResource(vms, config.kinds()).register(router);
        new MigrationResource(migrations).register(router);
        new DrainResource(drains).register(router);
        new UiResource().register(router);
        return router;
    }

    @Provides
    @Singleton
    ApiServer api(FerrydConfig config, Router router, @Named("http") EventLoopGroup group, @Named("api") ExecutorService workers,
                  FerryMetrics metrics) {
        return new ApiServer(config.http(), config.token(), router, group, workers, metrics.registry(), ApiServer.Limits.DEFAULT);
    }

    /**
     * Start order: VMs, the warm-up of the migration code (so that a daemon that listens migrates at
     * full speed from its first migration), the migration listener, the captures, the migrations, drains, the API. Stopped in
     * reverse: the API stops taking requests, a drain starts no more migrations, running migrations are
     * cancelled and rolled back while the listener can still tell their peers, their captures get a
     * moment to close, then the listener closes, the VMs stop, and the threads end.
     */
    @Provides
    @Singleton
    Lifecycle lifecycle(VmManager vms, MigrationTransport transport, Captures captures, MigrationManager migrations, DrainManager drains,
                        ApiServer api,
                        @Named("http") EventLoopGroup http, @Named("migration") EventLoopGroup migrationLoops,
                        @Named("api") ExecutorService workers, FerryMetrics metrics) {
        Managed threads = new Managed() {
            @Override
            public void start() {
            }

            @Override
            public void stop() {
                workers.shutdown();
                http.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
                migrationLoops.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
                metrics.close();
            }
        };
        return new Lifecycle(List.of(threads, vms, new dev.ferry.orchestrator.migration.Warmup(), transport, captures, migrations, drains,
                api));
    }
}
