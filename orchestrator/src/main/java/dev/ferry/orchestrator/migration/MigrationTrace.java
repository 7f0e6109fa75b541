package dev.ferry.orchestrator.migration;

import dev.ferry.device.Device;
import dev.ferry.device.TransitionListener;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionResult;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Every device state change a migration made on this daemon, in order, with its start (µs since the
 * migration began) and duration; and the phases. The API serves it as JSON or as Chrome trace-event
 * JSON (one track per device, one for the phases), which Perfetto opens.
 */
public final class MigrationTrace implements TransitionListener {
    /** One state write. {@code result} is {@code ok}, {@code rejected} or {@code error}. */
    public record Event(long atMicros, String device, String from, String to, long durationMicros, String result) {
    }

    /** A phase and when it began, µs since the migration began. */
    public record PhaseMark(String phase, long atMicros) {
    }

    private final long originNanos;
    private volatile Consumer<Event> onEvent = event -> {
    };
    private final List<Event> events = new ArrayList<>();
    private final List<PhaseMark> phases = new ArrayList<>();

    public MigrationTrace(long originNanos) {
        this.originNanos = originNanos;
    }

    @Override
    public void transitioned(Device device, DeviceState requested, TransitionResult result, long startNanos, long durationNanos) {
        String outcome = result.succeeded() ? "ok" : result instanceof TransitionResult.Failed ? "error" : "rejected";
        add(new Event((startNanos - originNanos) / 1000, device.id(), result.from().label(), requested.label(),
                durationNanos / 1000, outcome));
    }

    @Override
    public void reset(Device device, DeviceState from, long startNanos, long durationNanos) {
        add(new Event((startNanos - originNanos) / 1000, device.id(), from.label(), "RUNNING (reset)", durationNanos / 1000, "ok"));
    }

    private void add(Event event) {
        synchronized (this) {
            events.add(event);
        }
        onEvent.accept(event);
    }

    /** Tells {@code listener} of every state change as it is recorded (the migration's event stream). */
    void onEvent(Consumer<Event> listener) {
        onEvent = listener;
    }

    public synchronized void phase(Phase phase, long atNanos) {
        phases.add(new PhaseMark(phase.label(), (atNanos - originNanos) / 1000));
    }

    public synchronized List<Event> events() {
        return List.copyOf(events);
    }

    public synchronized List<PhaseMark> phases() {
        return List.copyOf(phases);
    }

    /** Chrome trace-event JSON: complete events per device track, and the phases on track 0. */
    public synchronized Map<String, Object> chrome(String migrationId, long nowMicros) {
        List<Object> out = new ArrayList<>();
        Map<String, Integer> tracks = new LinkedHashMap<>();
        out.add(metadata("process_name", 0, "migration " + migrationId));
        out.add(metadata("thread_name", 0, "phases"));
        for (int i = 0; i < phases.size(); i++) {
            PhaseMark mark = phases.get(i);
            long end = i + 1 < phases.size() ? phases.get(i + 1).atMicros() : Math.max(mark.atMicros(), nowMicros);
            out.add(complete(mark.phase(), "phase", mark.atMicros(), Math.max(1, end - mark.atMicros()), 0, Map.of()));
        }
        for (Event event : events) {
            int track = tracks.computeIfAbsent(event.device(), device -> {
                int id = tracks.size() + 1;
                out.add(metadata("thread_name", id, device));
                return id;
            });
            out.add(complete(event.from() + " -> " + event.to(), "device", event.atMicros(), Math.max(1, event.durationMicros()),
                    track, Map.of("device", event.device(), "from", event.from(), "to", event.to(), "result", event.result())));
        }
        Map<String, Object> trace = new LinkedHashMap<>();
        trace.put("traceEvents", out);
        trace.put("displayTimeUnit", "ms");
        return trace;
    }

    private static Map<String, Object> metadata(String name, int tid, String value) {
        Map<String, Object> event = new LinkedHashMap<>();
        event.put("name", name);
        event.put("ph", "M");
        event.put("pid", 1);
        event.put("tid", tid);
        event.put("args", Map.of("name", value));
        return event;
    }

    private static Map<String, Object> complete(String name, String category, long ts, long duration, int tid, Map<String, Object> args) {
        Map<String, Object> event = new LinkedHashMap<>();
        event.put("name", name);
        event.put("cat", category);
        event.put("ph", "X");
        event.put("ts", ts);
        event.put("dur", duration);
        event.put("pid", 1);
        event.put("tid", tid);
        event.put("args", args);
        return event;
    }
}
