package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
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
import java.util.function.Supplier;

/**
 * One migration on this daemon, source or destination: its phase, progress numbers, trace, and the
 * subscribers of its event stream. The flow that runs it writes; the API reads snapshots.
 */
public final class Migration {
    /** An event of the stream: {@code phase}, {@code progress} or {@code end}, with the migration's view. */
    public record Event(String type, MigrationView data) {
    }

    /** How a flow is asked to stop. */
    interface Control {
        /** Cancels unless the commit is already sent; returns false when it was too late. */
        boolean cancel();
    }

    private final String id;
    private final Role role;
    private volatile String vm;
    private final String peer;
    private final Map<String, Object> policy;
    private final Instant startedAt = Instant.now();
    private final long startNanos = System.nanoTime();
    private final MigrationTrace trace = new MigrationTrace(startNanos);
    private final List<Consumer<Event>> subscribers = new CopyOnWriteArrayList<>();
    private final Map<String, AtomicLong> deviceBytes = new ConcurrentHashMap<>();
    private volatile Supplier<List<Device>> devices = List::of;
    private volatile Control control;

    private volatile Phase phase = Phase.SETUP;
    private final List<MigrationView.PhaseView> phases = new ArrayList<>();
    final AtomicLong iterations = new AtomicLong();
    final AtomicLong wireBytes = new AtomicLong();
    final AtomicLong memoryTransferred = new AtomicLong();
    final AtomicLong zeroPages = new AtomicLong();
    final AtomicLong deviceTotal = new AtomicLong();
    private volatile long memoryTotal;
    private volatile long remainingBytes;
    private volatile long dirtyRate;
    private volatile long throughput;
    private volatile Long expectedDowntimeMs;
    private volatile Long setupTimeMs;
    private volatile Long downtimeMs;
    private volatile Boolean verified;
    private volatile Long verifyMs;
    private volatile long endNanos = -1;
    private volatile MigrationView.ErrorView error;

    Migration(String id, Role role, String vm, String peer, Map<String, Object> policy) {
        this.id = id;
        this.role = role;
        this.vm = vm;
        this.peer = peer;
        this.policy = policy;
        phases.add(new MigrationView.PhaseView(Phase.SETUP.label(), 0, null));
        trace.phase(Phase.SETUP, startNanos);
    }

    public String id() {
        return id;
    }

    public Role role() {
        return role;
    }

    public String vm() {
        return vm;
    }

    /** The destination learns the VM's id from its description. */
    void setVm(String id) {
        vm = id;
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

    // ---- progress ------------------------------------------------------------------------------

    void enter(Phase next) {
        if (next == phase) {
            return;
        }
        long now = System.nanoTime();
        synchronized (phases) {
            int last = phases.size() - 1;
            MigrationView.PhaseView open = phases.get(last);
            phases.set(last, new MigrationView.PhaseView(open.phase(), open.startMs(), millis(now) - open.startMs()));
            phases.add(new MigrationView.PhaseView(next.label(), millis(now), null));
        }
        phase = next;
        trace.phase(next, now);
        if (next.terminal()) {
            endNanos = now;
            synchronized (phases) {
                int last = phases.size() - 1;
                phases.set(last, new MigrationView.PhaseView(next.label(), millis(now), 0L));
            }
            publish("end");
            subscribers.clear();
        } else {
            publish("phase");
        }
    }

    void memorySent(long pages, long zero, long wire) {
        memoryTransferred.addAndGet(pages * 4096);
        zeroPages.addAndGet(zero);
        wireBytes.addAndGet(wire);
    }

    void deviceSent(String device, long bytes) {
        deviceBytes.computeIfAbsent(device, d -> new AtomicLong()).addAndGet(bytes);
        deviceTotal.addAndGet(bytes);
        wireBytes.addAndGet(bytes);
    }

    void setRemainingBytes(long bytes) {
        remainingBytes = bytes;
    }

    void setDirtyRate(long bytesPerSecond) {
        dirtyRate = bytesPerSecond;
    }

    void setThroughput(long bytesPerSecond) {
        throughput = bytesPerSecond;
    }

    void setExpectedDowntimeMs(long millis) {
        expectedDowntimeMs = millis;
    }

    void setSetupTime(long nanos) {
        setupTimeMs = TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    void setDowntime(long nanos) {
        downtimeMs = TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    public Long downtimeMs() {
        return downtimeMs;
    }

    /** This side digested the frozen VM in {@code nanos}. */
    void setVerifyTime(long nanos) {
        verifyMs = java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    void setVerified(boolean value) {
        verified = value;
    }

    void setError(String code, String message) {
        error = new MigrationView.ErrorView(code, message);
    }

    public MigrationView.ErrorView error() {
        return error;
    }

    long remainingBytes() {
        return remainingBytes;
    }

    long dirtyRate() {
        return dirtyRate;
    }

    long throughput() {
        return throughput;
    }

    private long millis(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(nanos - startNanos);
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

    /** A progress event to every subscriber. */
    void tick() {
        if (!subscribers.isEmpty() && !finished()) {
            publish("progress");
        }
    }

    private void publish(String type) {
        if (subscribers.isEmpty()) {
            return;
        }
        Event event = new Event(type, view());
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
            deviceViews.add(new MigrationView.DeviceProgress(device.id(), device.state().label(), bytes == null ? 0 : bytes.get()));
        }
        List<MigrationView.PhaseView> phaseList;
        synchronized (phases) {
            phaseList = List.copyOf(phases);
        }
        return new MigrationView(id, vm, role.label(), peer, phase.label(), policy, startedAt.toString(), setupTimeMs,
                TimeUnit.NANOSECONDS.toMillis(now - startNanos), downtimeMs, expectedDowntimeMs, iterations.get(),
                wireBytes.get(), remainingBytes,
                new MigrationView.MemoryProgress(memoryTotal, memoryTransferred.get(), zeroPages.get()), deviceTotal.get(),
                dirtyRate, throughput, deviceViews, verified, verifyMs, error, phaseList);
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
        return view;
    }
}
