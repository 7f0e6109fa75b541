package dev.ferry.orchestrator.metrics;

import dev.ferry.device.DeviceKind;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.LongTaskTimer;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.netty.channel.EventLoopGroup;
import java.lang.management.ManagementFactory;
import java.lang.management.OperatingSystemMXBean;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.ToDoubleFunction;

/**
 * The daemon's meters, in one Prometheus registry of its own (never the global one), named as
 * DESIGN.md lists them, in base units. Labels are bounded sets (role, result, phase, kind, reason);
 * never VM or device ids.
 *
 * <p>Every counter with a bounded label set exists at 0 for each of its values from the start: a
 * series that appears only with its first event at 1 is invisible to {@code increase()} and
 * {@code rate()}, so the first {@code switchover_unknown} of a daemon would never raise an alert.
 */
public final class FerryMetrics implements AutoCloseable {
    public static final List<String> ROLES = List.of("source", "destination");
    /** How a migration ends: its terminal phase. */
    public static final List<String> RESULTS = List.of("completed", "failed", "cancelled", "dry_run");
    /**
     * Every code a migration can fail with, as the API's {@code error.code} and the {@code reason}
     * label: MigrationFailure's constants, what MigrationFailure.codeOf makes of each protocol
     * ErrorCode, and the migration error codes of docs/api.md. A code added there must be added here
     * too, so that its series exists before its first failure (FerryMetricsTest checks both lists
     * against this one).
     */
    public static final List<String> FAILURE_REASONS = List.of(
            "cancelled", "timeout", "connection_failed", "connection_lost",
            "auth_failed", "unsupported_version", "bad_magic", "bad_role", "unknown_session", "duplicate_channel",
            "busy", "duplicate_vm", "incompatible", "incompatible_device", "device_transition_failed", "device_save_failed",
            "device_load_failed",
            "verify_failed", "protocol_error", "peer_failed", "switchover_unknown", "shutdown", "internal");
    /**
     * The source flow's phases: both sides label bytes with them (the destination learns the
     * source's phase from PHASE frames), so sent and received bytes of one phase line up.
     */
    public static final List<String> PHASES = List.of("setup", "precopy", "viommu_grace", "p2p_grace", "stop_copy", "switchover");
    /** What the bytes on the wire carry: pages, device data, or the rest (control frames, keepalives). */
    public static final List<String> BYTE_KINDS = List.of("memory", "device", "control");
    public static final List<String> TRANSITION_RESULTS = List.of("ok", "failed");
    /** The steps on the downtime's path (F6), as the migration resource's downtimeSteps names them. */
    public static final List<String> DOWNTIME_STEPS = List.of("vcpus_stop", "devices_stop", "final_transfer", "prepare", "switchover");
    /** A device's part in the downtime (F6): quiesce and save on the source, load and resume on the destination. */
    public static final List<String> DEVICE_STEPS = List.of("quiesce", "save", "load", "resume");

    /**
     * Buckets of whole migrations, seconds: from a paused VM of a few MiB to an hour-long pre-copy
     * (a few explicit buckets keep the series per role small, unlike Micrometer's ~100 defaults).
     */
    private static final Duration[] DURATION_BUCKETS = seconds(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600);
    /** Buckets of downtime, seconds: around the 10 ms target, up to beyond any sane limit. */
    private static final Duration[] DOWNTIME_BUCKETS = seconds(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30);

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final JvmGcMetrics gc = new JvmGcMetrics();
    private final Map<String, Counter> started = new HashMap<>();
    private final Map<String, Counter> finished = new HashMap<>();
    private final Map<String, Counter> failures = new HashMap<>();
    private final Map<String, Timer> durations = new HashMap<>();
    private final Map<String, Counter> sent = new HashMap<>();
    private final Map<String, Counter> received = new HashMap<>();
    private final Map<String, Counter> transitions = new HashMap<>();
    private final Map<String, Timer> downtimeSteps = new HashMap<>();
    private final Map<String, Timer> deviceSteps = new HashMap<>();
    private final Timer downtime;
    private final Counter iterations;

    public FerryMetrics(String version) {
        this(version, Arrays.stream(DeviceKind.values()).map(DeviceKind::label).toList());
    }

    /** @param deviceKinds the kinds whose state-write counters exist from the start */
    public FerryMetrics(String version, List<String> deviceKinds) {
        // Binders whose names Prometheus' own lint refuses are replaced by ours, with the names it
        // expects: process.cpu.time is in ns (process_cpu_seconds_total below), system.cpu.count
        // ends in _count like a summary's sample.
        registry.config().meterFilter(MeterFilter.denyNameStartsWith("process.cpu.time"));
        registry.config().meterFilter(new MeterFilter() {
            @Override
            public Meter.Id map(Meter.Id id) {
                return id.getName().equals("system.cpu.count") ? id.withName("jvm.available.processors") : id;
            }
        });
        new JvmMemoryMetrics().bindTo(registry);
        gc.bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
        new FileDescriptorMetrics().bindTo(registry);
        OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
            FunctionCounter.builder("process.cpu", sun, bean -> bean.getProcessCpuTime() / 1e9).baseUnit("seconds")
                    .description("CPU time used by the daemon's process").register(registry);
        }
        NettyMeters.bindAllocators(registry);
        Gauge.builder("ferry.build.info", () -> 1).description("ferryd's version").tag("version", version).register(registry);

        for (String role : ROLES) {
            started.put(role, counter("ferry.migrations.started", "Migrations started", "role", role));
            for (String result : RESULTS) {
                finished.put(role + '/' + result,
                        finishedCounter(role, result));
            }
            for (String reason : FAILURE_REASONS) {
                failures.put(role + '/' + reason,
                        counter("ferry.migration.failures", "Failed migrations, by reason code", "role", role, "reason", reason));
            }
            durations.put(role, durationTimer(role));
        }
        for (String phase : PHASES) {
            for (String kind : BYTE_KINDS) {
                sent.put(phase + '/' + kind, bytesCounter("ferry.migration.sent.bytes", "Migration bytes sent", phase, kind));
                received.put(phase + '/' + kind, bytesCounter("ferry.migration.received.bytes", "Migration bytes received", phase, kind));
            }
        }
        for (String kind : deviceKinds) {
            for (String result : TRANSITION_RESULTS) {
                transitions.put(kind + '/' + result, transitionCounter(kind, result));
            }
            for (String step : DEVICE_STEPS) {
                deviceSteps.put(kind + '/' + step, deviceStepTimer(kind, step));
            }
        }
        for (String step : DOWNTIME_STEPS) {
            downtimeSteps.put(step, Timer.builder("ferry.migration.downtime.step").description(
                    "The steps of completed migrations' downtime (F6), measured on the source").tag("step", step)
                    .serviceLevelObjectives(DOWNTIME_BUCKETS).register(registry));
        }
        downtime = Timer.builder("ferry.migration.downtime").description("Downtime of completed migrations, measured on the source (F6)")
                .serviceLevelObjectives(DOWNTIME_BUCKETS).register(registry);
        iterations = counter("ferry.migration.iterations", "Pre-copy iterations over memory");
    }

    public MeterRegistry registry() {
        return registry;
    }

    /**
     * The Prometheus text exposition, or OpenMetrics when {@code accept} asks for it. Without the
     * {@code _max} gauges Micrometer adds beside each histogram: they hold the largest value of the
     * last two minutes and then fall back to 0, which on a dashboard reads as "nothing happened";
     * the histograms' buckets say what is known for any range.
     */
    public String scrape(String accept) {
        String text = registry.scrape(accept == null ? "text/plain" : accept);
        Set<String> maxima = new HashSet<>();
        for (Meter meter : registry.getMeters()) {
            if (meter instanceof Timer || meter instanceof DistributionSummary || meter instanceof LongTaskTimer) {
                Meter.Id id = meter.getId();
                String base = registry.config().namingConvention().name(id.getName(), id.getType(),
                        meter instanceof DistributionSummary ? id.getBaseUnit() : "seconds");
                maxima.add(base + "_max");
            }
        }
        StringBuilder out = new StringBuilder(text.length());
        for (String line : text.split("\n", -1)) {
            if (!maxima.contains(metricName(line))) {
                out.append(line).append('\n');
            }
        }
        // split(-1) leaves one empty piece after the final newline; drop the newline it added.
        out.setLength(out.length() - 1);
        return out.toString();
    }

    /** The family a line of either exposition format belongs to, or "" for other lines. */
    private static String metricName(String line) {
        String rest = line;
        if (line.startsWith("# HELP ") || line.startsWith("# TYPE ") || line.startsWith("# UNIT ")) {
            rest = line.substring(7);
        } else if (line.startsWith("#")) {
            return "";
        }
        int end = 0;
        while (end < rest.length() && rest.charAt(end) != ' ' && rest.charAt(end) != '{') {
            end++;
        }
        return rest.substring(0, end);
    }

    /** Pending tasks per event loop of one of the daemon's groups ({@code name} labels them). */
    public void bindEventLoops(String name, EventLoopGroup group) {
        NettyMeters.bindEventLoops(registry, name, group);
    }

    public void migrationStarted(String role) {
        lookup(started, role, () -> counter("ferry.migrations.started", "Migrations started", "role", role)).increment();
    }

    public void migrationFinished(String role, String result, long durationNanos) {
        lookup(finished, role + '/' + result, () -> finishedCounter(role, result)).increment();
        lookup(durations, role, () -> durationTimer(role)).record(durationNanos, TimeUnit.NANOSECONDS);
    }

    /**
     * A dry run ended, whatever its answer: {@code result="dry_run"}, never in the failures or the duration
     * histogram, so that a refusal asked for does not read as a failed migration (nor fire the failure alert).
     */
    public void dryRunFinished(String role) {
        lookup(finished, role + "/dry_run", () -> finishedCounter(role, "dry_run")).increment();
    }

    public void migrationFailed(String role, String reason) {
        lookup(failures, role + '/' + reason,
                () -> counter("ferry.migration.failures", "Failed migrations, by reason code", "role", role, "reason", reason)).increment();
    }

    public void downtime(long nanos) {
        downtime.record(nanos, TimeUnit.NANOSECONDS);
    }

    /** A step of a completed migration's downtime; {@code step} one of {@link #DOWNTIME_STEPS}. */
    public void downtimeStep(String step, double millis) {
        Timer timer = downtimeSteps.get(step);
        if (timer != null) {
            timer.record((long) (millis * 1e6), TimeUnit.NANOSECONDS);
        }
    }

    /**
     * A device's part in a completed migration's downtime, by kind (never by device); {@code step} one
     * of {@link #DEVICE_STEPS}; nothing for a part this side does not know ({@code null}).
     */
    public void deviceDowntime(String kind, String step, Double millis) {
        if (millis == null) {
            return;
        }
        lookup(deviceSteps, kind + '/' + step, () -> deviceStepTimer(kind, step)).record((long) (millis * 1e6), TimeUnit.NANOSECONDS);
    }

    private Timer deviceStepTimer(String kind, String step) {
        return Timer.builder("ferry.device.downtime").description("Devices' parts in completed migrations' downtime (F6), by kind")
                .tag("kind", kind).tag("step", step).serviceLevelObjectives(DOWNTIME_BUCKETS).register(registry);
    }

    /** Bytes put on the wire; {@code phase} one of {@link #PHASES}, {@code kind} one of {@link #BYTE_KINDS}. */
    public void sent(String phase, String kind, long bytes) {
        lookup(sent, phase + '/' + kind, () -> bytesCounter("ferry.migration.sent.bytes", "Migration bytes sent", phase, kind))
                .increment(bytes);
    }

    /** Bytes taken off the wire, labelled with the source's phase as for {@link #sent}. */
    public void received(String phase, String kind, long bytes) {
        lookup(received, phase + '/' + kind, () -> bytesCounter("ferry.migration.received.bytes", "Migration bytes received", phase, kind))
                .increment(bytes);
    }

    public void iteration() {
        iterations.increment();
    }

    public void deviceTransition(String kind, boolean succeeded) {
        String result = succeeded ? "ok" : "failed";
        lookup(transitions, kind + '/' + result, () -> transitionCounter(kind, result)).increment();
    }

    public <T> void gauge(String name, String description, T source, ToDoubleFunction<T> value, String... tags) {
        Gauge.builder(name, source, value).description(description).tags(tags).register(registry);
    }

    public <T> void monotonic(String name, String description, T source, ToDoubleFunction<T> value) {
        FunctionCounter.builder(name, source, value).description(description).register(registry);
    }

    /**
     * The meter made at start for a bounded label value; a value outside the bounded sets (a device
     * kind from a user's jar) still counts, in a series made on its first event.
     */
    private static <M> M lookup(Map<String, M> made, String key, java.util.function.Supplier<M> make) {
        M meter = made.get(key);
        return meter != null ? meter : make.get();
    }

    private Timer durationTimer(String role) {
        return Timer.builder("ferry.migration.duration").description("Total time of finished migrations").tag("role", role)
                .serviceLevelObjectives(DURATION_BUCKETS).register(registry);
    }

    private Counter bytesCounter(String name, String description, String phase, String kind) {
        return Counter.builder(name).description(description).tags("phase", phase, "kind", kind).register(registry);
    }

    private Counter transitionCounter(String kind, String result) {
        return counter("ferry.device.state.transitions", "Device state writes", "kind", kind, "result", result);
    }

    private Counter finishedCounter(String role, String result) {
        return counter("ferry.migrations.finished", "Migrations finished, by result", "role", role, "result", result);
    }

    private Counter counter(String name, String description, String... tags) {
        return Counter.builder(name).description(description).tags(tags).register(registry);
    }

    private static Duration[] seconds(double... values) {
        return Arrays.stream(values).mapToObj(s -> Duration.ofNanos(Math.round(s * 1e9))).toArray(Duration[]::new);
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
