package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.orchestrator.capture.Capture;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * One migration on this daemon, source or destination: its phase (a state machine per role, see
 * {@link Phase}), its live numbers, its trace, and the subscribers of its event stream. The flow that
 * runs it and the channels' meters write; the API reads snapshots.
 *
 * <p>Progress moves as bytes leave or arrive, not per pass: page bytes are counted when their frame
 * is written to the socket (so they are never ahead of what was sent), and every 250 ms {@link #tick}
 * samples the bytes for the current rate and asks the flow how much is left.
 */
public final class Migration {
    /**
     * An event of the stream: {@code phase}, {@code progress} or {@code end} with the migration's view;
     * {@code device} with one device's state change ({@link MigrationTrace.Event}); {@code barrier} with
     * the step the flow is about to take on every device ({@link Barrier}).
     */
    public record Event(String type, Object data) {
    }

    /**
     * The intent before a barrier step (F1): every device listed is about to be written its target
     * state, and none moves past the step before all are there.
     */
    public record Barrier(String step, Map<String, String> targets) {
    }

    /** The settings a running migration takes (QEMU's migrate-set-parameters); null leaves one as it is. */
    public record Parameters(Long maxBandwidthBytesPerSecond, Long downtimeLimitMs) {
    }

    /** How a flow is asked to stop, or to change course. */
    interface Control {
        /**
         * Applies new settings to a running source migration, from its next frame and its next
         * convergence check; refused on a destination and past the switchover's start.
         */
        default void update(Parameters parameters) {
            throw dev.ferry.orchestrator.Refusal.conflict("not_a_source", "only the source of a migration takes new settings");
        }

        /**
         * Stops the migration unless it is past its commit: operator's cancel ({@code cancelled}) or the
         * daemon stopping ({@code shutdown}). Returns false when it was too late; waits at most briefly
         * while a commit is being written, so the answer is never contradicted by what follows.
         */
        boolean cancel(String reason);
    }

    /** The rate is measured over about this long a window. */
    private static final long RATE_WINDOW_NANOS = TimeUnit.SECONDS.toNanos(2);

    private final String id;
    private final Role role;
    private volatile String vm;
    private volatile String peer;
    private final Map<String, Object> policy;
    private final Map<String, Object> updated = new java.util.concurrent.ConcurrentHashMap<>();
    private final Instant startedAt = Instant.now();
    private final long startNanos = System.nanoTime();
    private final MigrationTrace trace = new MigrationTrace(startNanos);
    private final List<Consumer<Event>> subscribers = new CopyOnWriteArrayList<>();
    private final Map<String, AtomicLong> deviceBytes = new ConcurrentHashMap<>();
    private final Map<String, MigrationView.DeviceDowntime> deviceDowntime = new ConcurrentHashMap<>();
    private final Map<String, String> deviceKinds = new ConcurrentHashMap<>();
    private volatile Supplier<List<Device>> devices = List::of;
    private volatile LongSupplier remaining = () -> 0;
    private volatile Control control;
    private volatile Capture capture;

    private volatile Phase phase;
    private final List<MigrationView.PhaseView> phases = new ArrayList<>();
    private final List<MigrationView.PassView> passes = new CopyOnWriteArrayList<>();
    private final AtomicLong iterations = new AtomicLong();
    private final AtomicLong wireBytes = new AtomicLong();
    private final AtomicLong normalPages = new AtomicLong();
    private final AtomicLong zeroPages = new AtomicLong();
    private final AtomicLong tornPages = new AtomicLong();
    private final AtomicLong deviceTotal = new AtomicLong();
    private volatile long memoryTotal;
    private volatile long remainingBytes;
    private volatile long dirtyRate;
    private volatile long rate;
    private volatile int throttle;
    private volatile int deviceThrottle;
    private volatile Long switchoverAckWaitMs;
    private volatile List<MigrationView.DowntimeStep> downtimeSteps = List.of();
    private volatile List<MigrationView.RecoveryView> recoveries = List.of();
    private volatile Long expectedDowntimeMs;
    private volatile Long setupTimeMs;
    private volatile Long downtimeMs;
    private volatile Boolean downtimeLimitMet;
    private volatile Boolean verified;
    private volatile Double verifyMs;
    private volatile Long verifyBytes;
    private volatile long endNanos = -1;
    private volatile Instant finishedAt;
    private volatile MigrationView.ErrorView error;
    /** A dry run (F8 only): counted apart from migrations in the metrics, since nothing moves. */
    private volatile boolean dryRun;
    // Guarded by this: samples of (time, wire bytes) for the rate.
    private final long[] sampleNanos = new long[16];
    private final long[] sampleBytes = new long[16];
    private int samples;

    Migration(String id, Role role, String vm, String peer, Map<String, Object> policy) {
        this.id = id;
        this.role = role;
        this.vm = vm;
        this.peer = peer;
        this.policy = policy;
        this.phase = role == Role.SOURCE ? SourcePhase.SETUP : DestinationPhase.SETUP;
        phases.add(new MigrationView.PhaseView(phase.label(), 0, null));
        trace.phase(phase, startNanos);
        trace.onEvent(event -> publish("device", event));
    }

    public String id() {
        return id;
    }

    public Role role() {
        return role;
    }

    /** Whether this is a dry run: the source knows from its request, the destination from the VM description. */
    public boolean dryRun() {
        return dryRun;
    }

    void markDryRun() {
        dryRun = true;
    }

    public String vm() {
        return vm;
    }

    /** The destination learns the VM's id from its description. */
    void setVm(String id) {
        vm = id;
    }

    /** The destination learns where the source's daemon listens from its description. */
    void setPeer(String address) {
        peer = address;
    }

    public Phase phase() {
        return phase;
    }

    public MigrationTrace trace() {
        return trace;
    }

    public boolean finished() {
        return phase.terminal();
    }

    long startNanos() {
        return startNanos;
    }

    /** This side captures the session into {@code capture}. */
    void setCapture(Capture capture) {
        this.capture = capture;
    }

    Capture capture() {
        return capture;
    }

    void setControl(Control control) {
        this.control = control;
    }

    Control control() {
        return control;
    }

    void setDevices(Supplier<List<Device>> devices) {
        this.devices = devices;
    }

    void setMemoryTotal(long bytes) {
        memoryTotal = bytes;
    }

    /** What the flow says is left to send, asked at each tick. */
    void setRemaining(LongSupplier estimate) {
        remaining = estimate;
        askRemaining();
    }

    private void askRemaining() {
        remainingBytes = Math.max(0, remaining.getAsLong());
    }

    // ---- phases --------------------------------------------------------------------------------

    /**
     * Enters the next phase; a transition the role's state machine does not allow is a bug in the flow
     * and fails at once.
     */
    void enter(Phase next) {
        if (next == phase) {
            return;
        }
        if (!phase.canEnter(next)) {
            throw new IllegalStateException("migration " + id + ": " + role.label() + " cannot go from " + phase.label()
                    + " to " + next.label());
        }
        long now = System.nanoTime();
        synchronized (phases) {
            int last = phases.size() - 1;
            MigrationView.PhaseView open = phases.get(last);
            phases.set(last, new MigrationView.PhaseView(open.phase(), open.startMs(), millis(now) - open.startMs()));
            phases.add(new MigrationView.PhaseView(next.label(), millis(now), next.terminal() ? 0L : null));
        }
        if (next.terminal()) {
            endNanos = now;
            finishedAt = Instant.now();
            remainingBytes = next == SourcePhase.COMPLETED || next == DestinationPhase.COMPLETED ? 0 : remainingBytes;
            long elapsed = Math.max(1, now - startNanos);
            rate = (long) (wireBytes.get() * 1e9 / elapsed);
        }
        phase = next;
        trace.phase(next, now);
        if (next.terminal()) {
            publish("end");
            subscribers.clear();
        } else {
            if (!subscribers.isEmpty()) {
                // What is left, as of now: the last tick's figure belongs to the phase before, and beside
                // the bytes sent since it could add up to more than the VM.
                askRemaining();
            }
            publish("phase");
        }
    }

    // ---- progress ------------------------------------------------------------------------------

    /** Bytes of any frame on the wire, sent (source) or received (destination). */
    void wire(long bytes) {
        wireBytes.addAndGet(bytes);
    }

    /** Pages of a PAGES frame, written (source) or applied (destination). */
    void pages(long pages, long zero) {
        normalPages.addAndGet(pages - zero);
        zeroPages.addAndGet(zero);
    }

    /** Destination: a page arrived torn (changed while the source sent it) and must come again. */
    void tornPage() {
        tornPages.incrementAndGet();
    }

    /** A device's migration data, written (source) or loaded into its window (destination). */
    /** F4: how the source's devices were brought back after a failure (see {@link MigrationView.RecoveryView}). */
    void recovered(List<MigrationView.RecoveryView> done) {
        recoveries = List.copyOf(done);
    }

    void deviceData(String device, long bytes) {
        deviceBytes.computeIfAbsent(device, d -> new AtomicLong()).addAndGet(bytes);
        deviceTotal.addAndGet(bytes);
    }

    /** A pass over memory ended (its iteration barrier passed). */
    void passEnded(MigrationView.PassView pass) {
        passes.add(pass);
        iterations.set(passes.size());
    }

    /** The destination counts iterations from the source's ITERATION_END frames. */
    void setIterations(long count) {
        iterations.set(count);
    }

    long iterations() {
        return iterations.get();
    }

    long wireBytes() {
        return wireBytes.get();
    }

    long normalPages() {
        return normalPages.get();
    }

    long zeroPagesSent() {
        return zeroPages.get();
    }

    /** A setting changed while running: the view's policy shows the value in force. */
    void policyChanged(String name, Object value) {
        updated.put(name, value);
    }

    void setDirtyRate(long bytesPerSecond) {
        dirtyRate = bytesPerSecond;
    }

    void setThrottle(int percent) {
        throttle = percent;
    }

    void setExpectedDowntimeMs(long millis) {
        expectedDowntimeMs = millis;
    }

    void setSetupTime(long nanos) {
        setupTimeMs = TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    /**
     * The downtime and its steps, which add up to it (F6), and whether it was within the limit in
     * force: a migration is never reported as meeting a limit it exceeded.
     */
    void setDowntime(long nanos, List<MigrationView.DowntimeStep> steps, long limitMs) {
        downtimeSteps = List.copyOf(steps);
        downtimeMs = TimeUnit.NANOSECONDS.toMillis(nanos);
        downtimeLimitMet = nanos <= TimeUnit.MILLISECONDS.toNanos(limitMs);
    }

    /** F7: how long the source waited for the switchover acknowledgement once pre-copy had converged. */
    void setSwitchoverAckWait(long nanos) {
        switchoverAckWaitMs = TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    void setDeviceThrottle(int percent) {
        deviceThrottle = percent;
    }

    /** A device's part in the downtime (F6), merged with what is known already. */
    void deviceDowntime(String device, String kind, MigrationView.DeviceDowntime downtime) {
        deviceKinds.put(device, kind);
        deviceDowntime.merge(device, downtime, MigrationView.DeviceDowntime::with);
    }

    /** R4 on the destination took this long for the device. */
    void deviceResumed(String device, double millis) {
        deviceDowntime.merge(device, new MigrationView.DeviceDowntime(null, null, null, null, null, millis),
                MigrationView.DeviceDowntime::with);
    }

    /** A device's kind and its part in the downtime. */
    record KindDowntime(String kind, MigrationView.DeviceDowntime downtime) {
    }

    /** Each device's kind and part in the downtime, for the metrics (which label by kind, never by device). */
    List<KindDowntime> deviceDowntimes() {
        List<KindDowntime> all = new ArrayList<>();
        deviceDowntime.forEach((device, downtime) -> all.add(new KindDowntime(deviceKinds.getOrDefault(device, "unknown"), downtime)));
        return all;
    }

    public Long downtimeMs() {
        return downtimeMs;
    }

    /** This side digested the frozen VM in {@code nanos}, hashing {@code bytes} that changed since its last refresh. */
    void setVerify(long nanos, long bytes) {
        verifyMs = nanos / 1e6;
        verifyBytes = bytes;
    }

    void setVerified(boolean value) {
        verified = value;
    }

    void setError(MigrationFailure failure) {
        error = new MigrationView.ErrorView(failure.code(), failure.getMessage(), failure.details());
    }

    public MigrationView.ErrorView error() {
        return error;
    }

    /** How it ended, in a few words: its phase, and a failure's code ("failed: connection_lost"). */
    String outcome() {
        MigrationView.ErrorView failure = error;
        boolean said = failure == null || !phase.terminal() || failure.code().equals(phase.label());
        return phase.label() + (said ? "" : ": " + failure.code());
    }

    long remainingBytes() {
        return remainingBytes;
    }

    long dirtyRate() {
        return dirtyRate;
    }

    /** Bytes per second over the last two seconds while running; over the whole migration once ended. */
    long throughput() {
        return rate;
    }

    private long millis(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(nanos - startNanos);
    }

    /** The throughput an ETA is computed from must span this much of the migration. */
    private static final long ETA_MIN_SPAN_NANOS = TimeUnit.MILLISECONDS.toNanos(1000);
    /** The time the current throughput was measured over. */
    private volatile long rateSpanNanos;

    /** Every 250 ms while running: samples the rate, asks the flow what is left, tells subscribers. */
    void tick() {
        if (finished()) {
            return;
        }
        long now = System.nanoTime();
        long bytes = wireBytes.get();
        synchronized (this) {
            int slot = samples % sampleNanos.length;
            sampleNanos[slot] = now;
            sampleBytes[slot] = bytes;
            samples++;
            // The oldest sample within the window, or the oldest kept.
            int oldest = samples - 1;
            for (int i = samples - 1; i >= Math.max(0, samples - sampleNanos.length); i--) {
                int k = i % sampleNanos.length;
                if (now - sampleNanos[k] > RATE_WINDOW_NANOS) {
                    break;
                }
                oldest = i;
            }
            int k = oldest % sampleNanos.length;
            long span = now - sampleNanos[k];
            rate = span <= 0 ? rate : (long) ((bytes - sampleBytes[k]) * 1e9 / span);
            rateSpanNanos = span;
        }
        if (!finished()) {
            askRemaining();
        }
        if (!subscribers.isEmpty() && !finished()) {
            publish("progress");
        }
    }

    // ---- events --------------------------------------------------------------------------------

    /** Subscribes to the event stream; an ended migration gets its end event at once. */
    public void subscribe(Consumer<Event> subscriber) {
        if (finished()) {
            subscriber.accept(new Event("end", view()));
            return;
        }
        subscribers.add(subscriber);
        if (finished() && subscribers.remove(subscriber)) {
            subscriber.accept(new Event("end", view()));
        }
    }

    public void unsubscribe(Consumer<Event> subscriber) {
        subscribers.remove(subscriber);
    }

    /** A barrier step begins: tells the stream which state each device is about to be written (F1). */
    void barrier(String step, List<Device> devices, Function<Device, DeviceState> target) {
        if (subscribers.isEmpty()) {
            return;
        }
        Map<String, String> targets = new LinkedHashMap<>();
        for (Device device : devices) {
            targets.put(device.id(), target.apply(device).label());
        }
        publish("barrier", new Barrier(step, targets));
    }

    private void publish(String type) {
        if (subscribers.isEmpty()) {
            return;
        }
        publish(type, view());
    }

    private void publish(String type, Object data) {
        if (subscribers.isEmpty()) {
            return;
        }
        Event event = new Event(type, data);
        for (Consumer<Event> subscriber : subscribers) {
            subscriber.accept(event);
        }
    }

    // ---- the view ------------------------------------------------------------------------------

    public MigrationView view() {
        long now = endNanos >= 0 ? endNanos : System.nanoTime();
        List<MigrationView.DeviceProgress> deviceViews = new ArrayList<>();
        for (Device device : devices.get()) {
            AtomicLong bytes = deviceBytes.get(device.id());
            MigrationView.DeviceDowntime downtime = deviceDowntime.getOrDefault(device.id(),
                    new MigrationView.DeviceDowntime(null, null, null, null, null, null));
            deviceViews.add(new MigrationView.DeviceProgress(device.id(), device.state().label(), bytes == null ? 0 : bytes.get(),
                    device.pendingBytes(), downtime.stopCopyBytes(), downtime.predictedStopCopyBytes(), downtime.quiesceMs(),
                    downtime.saveMs(), downtime.loadMs(), downtime.resumeMs()));
        }
        List<MigrationView.PhaseView> phaseList;
        synchronized (phases) {
            phaseList = List.copyOf(phases);
        }
        long throughput = rate;
        long left = remainingBytes;
        // A rate over the first few ticks is mostly the setup's: an estimate from it says days for seconds of work.
        Long eta = finished() ? Long.valueOf(0)
                : throughput > 0 && rateSpanNanos >= ETA_MIN_SPAN_NANOS ? Long.valueOf(left * 1000 / throughput) : null;
        Instant finished = finishedAt;
        long normal = normalPages.get();
        Map<String, Object> settings = policy;
        if (!updated.isEmpty()) {
            settings = new LinkedHashMap<>(policy);
            settings.putAll(updated);
        }
        return new MigrationView(id, vm, role.label(), peer, phase.label(), settings, startedAt.toString(),
                finished == null ? null : finished.toString(), setupTimeMs, TimeUnit.NANOSECONDS.toMillis(now - startNanos),
                downtimeMs, downtimeLimitMet, downtimeSteps, expectedDowntimeMs, switchoverAckWaitMs, iterations.get(), wireBytes.get(), left,
                new MigrationView.MemoryProgress(memoryTotal, normal * PageGeometry.PAGE_SIZE, zeroPages.get(), normal,
                        PageGeometry.PAGE_SIZE, tornPages.get()),
                deviceTotal.get(), dirtyRate, throughput, eta, throttle, deviceThrottle, deviceViews, List.copyOf(passes), verified,
                verifyMs, verifyBytes, error, captureView(), phaseList, recoveries);
    }

    private MigrationView.CaptureView captureView() {
        Capture target = capture;
        if (target == null) {
            return null;
        }
        Capture.Stats stats = target.stats();
        return new MigrationView.CaptureView(target.file().toString(), target.pageData(), stats.frames(), stats.bytes(), stats.dropped(),
                stats.droppedBytes(), stats.closed(), stats.error());
    }

    static Map<String, Object> policyView(MigrationPolicy policy) {
        Map<String, Object> view = new LinkedHashMap<>();
        view.put("vm", policy.vm());
        view.put("destination", policy.destination().toString());
        view.put("downtimeLimitMs", policy.downtimeLimitMs());
        view.put("maxBandwidthBytesPerSecond", policy.maxBandwidthBytesPerSecond());
        view.put("channels", policy.channels());
        view.put("maxIterations", policy.maxIterations());
        view.put("timeoutMs", policy.timeoutMs());
        view.put("autoConverge", policy.autoConverge());
        view.put("verify", policy.verify());
        view.put("dryRun", policy.dryRun());
        view.put("capture", policy.capture());
        view.put("capturePages", policy.capturePages());
        view.put("compression", policy.compression().label());
        return view;
    }
}
