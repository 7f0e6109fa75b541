package dev.ferry.orchestrator.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.netty4.NettyAllocatorMetrics;
import io.micrometer.core.instrument.binder.netty4.NettyEventExecutorMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import io.netty.channel.EventLoopGroup;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.ToDoubleFunction;

/**
 * The daemon's meters, in one Prometheus registry of its own (never the global one), named as
 * DESIGN.md lists them, in base units. Labels are bounded sets (role, result, phase, kind, reason);
 * never VM or device ids.
 */
public final class FerryMetrics implements AutoCloseable {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final JvmGcMetrics gc = new JvmGcMetrics();

    public FerryMetrics(String version) {
        new JvmMemoryMetrics().bindTo(registry);
        gc.bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
        new FileDescriptorMetrics().bindTo(registry);
        // The allocator every channel uses unless told otherwise (Netty 4.2's adaptive one, or the one
        // -Dio.netty.allocator.type selects).
        if (ByteBufAllocator.DEFAULT instanceof ByteBufAllocatorMetricProvider allocator) {
            new NettyAllocatorMetrics(allocator).bindTo(registry);
        }
        Gauge.builder("ferry.build.info", () -> 1).description("ferryd's version").tag("version", version).register(registry);
    }

    public MeterRegistry registry() {
        return registry;
    }

    /** The Prometheus text exposition, or OpenMetrics when {@code accept} asks for it. */
    public String scrape(String accept) {
        return registry.scrape(accept == null ? "text/plain" : accept);
    }

    /** Event loop metrics (pending tasks per executor) of one of the daemon's groups. */
    public void bindEventLoops(EventLoopGroup group) {
        new NettyEventExecutorMetrics(group).bindTo(registry);
    }

    public void migrationStarted(String role) {
        counter("ferry.migrations.started", "Migrations started", "role", role).increment();
    }

    public void migrationFinished(String role, String result, long durationNanos) {
        counter("ferry.migrations.finished", "Migrations finished, by result", "role", role, "result", result).increment();
        Timer.builder("ferry.migration.duration").description("Total time of finished migrations").tag("role", role)
                .publishPercentileHistogram().minimumExpectedValue(Duration.ofMillis(1)).maximumExpectedValue(Duration.ofHours(1))
                .register(registry).record(durationNanos, TimeUnit.NANOSECONDS);
    }

    public void migrationFailed(String role, String reason) {
        counter("ferry.migration.failures", "Failed migrations, by reason code", "role", role, "reason", reason).increment();
    }

    public void downtime(long nanos) {
        Timer.builder("ferry.migration.downtime").description("Downtime of completed migrations, measured on the source (F6)")
                .publishPercentileHistogram().minimumExpectedValue(Duration.ofMillis(1)).maximumExpectedValue(Duration.ofSeconds(60))
                .register(registry).record(nanos, TimeUnit.NANOSECONDS);
    }

    /** Bytes put on the wire; {@code kind} is {@code memory} or {@code device}. */
    public void sent(String phase, String kind, long bytes) {
        counter("ferry.migration.sent.bytes", "Migration bytes sent", "phase", phase, "kind", kind).increment(bytes);
    }

    public void received(String phase, String kind, long bytes) {
        counter("ferry.migration.received.bytes", "Migration bytes received", "phase", phase, "kind", kind).increment(bytes);
    }

    public void iteration() {
        counter("ferry.migration.iterations", "Pre-copy iterations over memory").increment();
    }

    public void deviceTransition(String kind, boolean succeeded) {
        counter("ferry.device.state.transitions", "Device state writes", "kind", kind, "result", succeeded ? "ok" : "failed")
                .increment();
    }

    public <T> void gauge(String name, String description, T source, ToDoubleFunction<T> value, String... tags) {
        Gauge.builder(name, source, value).description(description).tags(tags).register(registry);
    }

    public <T> void monotonic(String name, String description, T source, ToDoubleFunction<T> value) {
        FunctionCounter.builder(name, source, value).description(description).register(registry);
    }

    private Counter counter(String name, String description, String... tags) {
        return Counter.builder(name).description(description).tags(tags).register(registry);
    }

    public static String label(Enum<?> value) {
        return value.name().toLowerCase(Locale.ROOT);
    }

    @Override
    public void close() {
        gc.close();
        registry.close();
    }
}
