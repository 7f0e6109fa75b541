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
 * migration began) and duration; the phases; and spans of work that is not a state change (each
 * downtime step, a device's stop-and-copy data). The API serves it as JSON or as Chrome trace-event
 * JSON (one track per device, one for the phases, one for the passes, one for the downtime), which
 * Perfetto opens.
 */
public final class MigrationTrace implements TransitionListener {
    /** One state write. {@code result} is {@code ok}, {@code rejected} or {@code error}. */
    public record Event(long atMicros, String device, String from, String to, long durationMicros, String result) {
    }

    /** A phase and when it began, µs since the migration began. */
    public record PhaseMark(String phase, long atMicros) {
    }

    /**
     * Work on a track that is not a state change: {@code track} is a device's id, or {@link #DOWNTIME}
     * for a step of the downtime (F6).
     */
    public record Span(String track, String name, long atMicros, long durationMicros, Map<String, Object> args) {
        public Span {
            args = Map.copyOf(args);
        }
    }

    /** The track of the downtime's steps. */
    public static final String DOWNTIME = "downtime";

    /** Process ids of the two sides in the Chrome trace. */
    public static final int SOURCE_PID = 1;
    public static final int DESTINATION_PID = 2;
    private static final int PHASES_TRACK = 0;
    private static final int PASSES_TRACK = 1;
    private static final int DOWNTIME_TRACK = 2;
    private static final int FIRST_DEVICE_TRACK = 3;

    private final long originNanos;
    private volatile Consumer<Event> onEvent = event -> {
    };
    private final List<Event> events = new ArrayList<>();
    private final List<PhaseMark> phases = new ArrayList<>();
    private final List<Span> spans = new ArrayList<>();

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

    public synchronized List<Span> spans() {
        return List.copyOf(spans);
    }

    /** Work from {@code startNanos} to {@code endNanos} ({@link System#nanoTime()}) on a track. */
    synchronized void span(String track, String name, long startNanos, long endNanos, Map<String, Object> args) {
        spans.add(new Span(track, name, (startNanos - originNanos) / 1000, Math.max(0, endNanos - startNanos) / 1000, args));
    }

    /**
     * Chrome trace-event JSON (Perfetto, {@code chrome://tracing}): the phases on one track, the passes
     * over memory on another, one track per device. Times are absolute, µs since the epoch, and the
     * process id is the side's ({@value #SOURCE_PID} source, {@value #DESTINATION_PID} destination),
     * so that the traces of both sides of a migration, their {@code traceEvents} put together, are one
     * timeline with a process per side.
     *
     * <p>The passes are not recorded here but given by the caller (the migration's {@code passes}, each
     * with its duration to the millisecond); they are laid out as they ran: the first from the start of
     * pre-copy, the others one after another once the devices' pre-copy state changes (S2) are done.
     *
     * @param role              {@code source} or {@code destination}
     * @param originEpochMicros when the migration began, µs since the epoch
     * @param nowMicros         now, µs since the migration began: where a phase still open ends
     */
    public synchronized Map<String, Object> chrome(String migrationId, String role, long originEpochMicros, long nowMicros,
                                                   List<MigrationView.PassView> passes) {
        int pid = role.equals(Role.DESTINATION.label()) ? DESTINATION_PID : SOURCE_PID;
        List<Object> out = new ArrayList<>();
        out.add(metadata("process_name", pid, 0, Map.of("name", "ferryd " + role + ": migration " + migrationId)));
        out.add(metadata("process_sort_index", pid, 0, Map.of("sort_index", pid)));
        out.add(metadata("thread_name", pid, PHASES_TRACK, Map.of("name", "phases")));
        long precopyStart = -1;
        long precopyEnd = -1;
        for (int i = 0; i < phases.size(); i++) {
            PhaseMark mark = phases.get(i);
            long end = i + 1 < phases.size() ? phases.get(i + 1).atMicros() : Math.max(mark.atMicros(), nowMicros);
            out.add(complete(mark.phase(), "phase", originEpochMicros + mark.atMicros(), Math.max(1, end - mark.atMicros()), pid,
                    PHASES_TRACK, Map.of()));
            if (mark.phase().equals(SourcePhase.PRECOPY.label())) {
                precopyStart = mark.atMicros();
                precopyEnd = end;
            }
        }
        if (!passes.isEmpty() && precopyStart >= 0) {
            out.add(metadata("thread_name", pid, PASSES_TRACK, Map.of("name", "passes")));
            // The devices' S2 writes follow the first pass; the next pass starts once they are done.
            long afterFirst = precopyStart + passes.get(0).durationMs() * 1000;
            long barrierEnd = afterFirst;
            for (Event event : events) {
                if (event.atMicros() >= precopyStart && event.atMicros() < precopyEnd) {
                    barrierEnd = Math.max(barrierEnd, event.atMicros() + event.durationMicros());
                }
            }
            long at = precopyStart;
            for (int i = 0; i < passes.size(); i++) {
                MigrationView.PassView pass = passes.get(i);
                if (i == 1) {
                    at = barrierEnd;
                }
                long duration = Math.max(1, pass.durationMs() * 1000);
                Map<String, Object> args = new LinkedHashMap<>();
                args.put("iteration", pass.iteration());
                args.put("pages", pass.pages());
                args.put("zeroPages", pass.zeroPages());
                args.put("bytes", pass.bytes());
                args.put("durationMs", pass.durationMs());
                args.put("dirtyRateBytesPerSecond", pass.dirtyRateBytesPerSecond());
                out.add(complete("pass " + pass.iteration(), "pass", originEpochMicros + at, duration, pid, PASSES_TRACK, args));
                at += duration;
            }
        }
        Map<String, Integer> tracks = new LinkedHashMap<>();
        for (Event event : events) {
            out.add(complete(event.from() + " -> " + event.to(), "device", originEpochMicros + event.atMicros(),
                    Math.max(1, event.durationMicros()), pid, deviceTrack(tracks, event.device(), pid, out),
                    Map.of("device", event.device(), "from", event.from(), "to", event.to(), "result", event.result())));
        }
        boolean downtime = false;
        for (Span span : spans) {
            int track;
            if (span.track().equals(DOWNTIME)) {
                if (!downtime) {
                    out.add(metadata("thread_name", pid, DOWNTIME_TRACK, Map.of("name", DOWNTIME)));
                    downtime = true;
                }
                track = DOWNTIME_TRACK;
            } else {
                track = deviceTrack(tracks, span.track(), pid, out);
            }
            out.add(complete(span.name(), span.track().equals(DOWNTIME) ? "downtime" : "device", originEpochMicros + span.atMicros(),
                    Math.max(1, span.durationMicros()), pid, track, span.args()));
        }
        Map<String, Object> trace = new LinkedHashMap<>();
        trace.put("traceEvents", out);
        trace.put("displayTimeUnit", "ms");
        return trace;
    }

    /** A device's track, named the first time it is used. */
    private static int deviceTrack(Map<String, Integer> tracks, String device, int pid, List<Object> out) {
        return tracks.computeIfAbsent(device, id -> {
            int track = FIRST_DEVICE_TRACK + tracks.size();
            out.add(metadata("thread_name", pid, track, Map.of("name", id)));
            return track;
        });
    }

    private static Map<String, Object> metadata(String name, int pid, int tid, Map<String, Object> args) {
        Map<String, Object> event = new LinkedHashMap<>();
        event.put("name", name);
        event.put("ph", "M");
        event.put("pid", pid);
        event.put("tid", tid);
        event.put("args", args);
        return event;
    }

    private static Map<String, Object> complete(String name, String category, long ts, long duration, int pid, int tid,
                                                Map<String, Object> args) {
        Map<String, Object> event = new LinkedHashMap<>();
        event.put("name", name);
        event.put("cat", category);
        event.put("ph", "X");
        event.put("ts", ts);
        event.put("dur", duration);
        event.put("pid", pid);
        event.put("tid", tid);
        event.put("args", args);
        return event;
    }
}
