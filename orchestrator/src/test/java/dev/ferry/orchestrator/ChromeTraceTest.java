package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.migration.MigrationTrace;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The Chrome traces of both sides of one migration, their events put together, are one timeline:
 * absolute times, a process per side, and the switchover in the order the protocol has it across
 * the two (the destination loads after the source stopped and copied, resumes after the source
 * committed, and the source completes after the destination resumed). The source's trace has a
 * span per pass over memory, inside pre-copy and one after another.
 */
class ChromeTraceTest {
    private record Span(int pid, int tid, String name, String cat, long ts, long dur, JsonNode args) {
        long end() {
            return ts + dur;
        }
    }

    private static List<Span> spans(JsonNode trace) {
        List<Span> spans = new ArrayList<>();
        for (JsonNode event : trace.path("traceEvents")) {
            if (event.path("ph").asText().equals("X")) {
                spans.add(new Span(event.path("pid").asInt(), event.path("tid").asInt(), event.path("name").asText(),
                        event.path("cat").asText(), event.path("ts").asLong(), event.path("dur").asLong(), event.path("args")));
            }
        }
        return spans;
    }

    private static Span phase(List<Span> spans, int pid, String name) {
        return spans.stream().filter(s -> s.pid() == pid && s.cat().equals("phase") && s.name().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no phase " + name + " of pid " + pid));
    }

    private static long epochMicros(String instant) {
        Instant at = Instant.parse(instant);
        return TimeUnit.SECONDS.toMicros(at.getEpochSecond()) + TimeUnit.NANOSECONDS.toMicros(at.getNano());
    }

    @Test
    void bothSidesMergeIntoOneTimelineWithTheSwitchoverInOrder() throws Exception {
        try (TestDaemons daemons = new TestDaemons()) {
            // Running and dirtying memory, with devices that pre-copy: at least two passes, since pre-copy
            // goes on until every device's initial data was sent once, which starts after the first pass.
            daemons.sourceApi.post("/v1/vms", TestDaemons.vm("traced", true, 16L << 20, 50, TestDaemons.p2pDevices()));
            String id = daemons.migrate("traced", Map.of()).path("id").asText();
            JsonNode source = daemons.awaitEnd(id);
            assertThat(source.path("phase").asText()).as(source.toString()).isEqualTo("completed");
            JsonNode destination = daemons.awaitDestinationEnd(id);

            JsonNode sourceTrace = daemons.sourceApi.get("/v1/migrations/" + id + "/trace?format=chrome");
            JsonNode destinationTrace = daemons.destinationApi.get("/v1/migrations/" + id + "/trace?format=chrome");
            List<Span> merged = new ArrayList<>(spans(sourceTrace));
            merged.addAll(spans(destinationTrace));
            merged.sort(Comparator.comparingLong(Span::ts));
            int src = MigrationTrace.SOURCE_PID;
            int dst = MigrationTrace.DESTINATION_PID;
            assertThat(spans(sourceTrace)).allMatch(s -> s.pid() == src);
            assertThat(spans(destinationTrace)).allMatch(s -> s.pid() == dst);
            for (JsonNode trace : List.of(sourceTrace, destinationTrace)) {
                assertThat(trace.path("traceEvents").findValuesAsText("name")).contains("process_name", "process_sort_index");
            }

            // Absolute times: within each side's startedAt and finishedAt.
            for (Span span : spans(sourceTrace)) {
                assertThat(span.ts()).isBetween(epochMicros(source.path("startedAt").asText()),
                        epochMicros(source.path("finishedAt").asText()) + 1000);
            }
            for (Span span : spans(destinationTrace)) {
                assertThat(span.ts()).isBetween(epochMicros(destination.path("startedAt").asText()),
                        epochMicros(destination.path("finishedAt").asText()) + 1000);
            }

            Span stopCopy = phase(merged, src, "stop_copy");
            Span switchover = phase(merged, src, "switchover");
            Span completed = phase(merged, src, "completed");
            List<Span> loads = merged.stream().filter(s -> s.pid() == dst && s.cat().equals("device")
                    && s.args().path("to").asText().equals("RUNNING|NDMA")).toList();
            List<Span> resumes = merged.stream().filter(s -> s.pid() == dst && s.cat().equals("device")
                    && s.args().path("to").asText().equals("RUNNING")).toList();
            assertThat(loads).hasSize(4);
            assertThat(resumes).hasSize(4);
            // R3 on PREPARE, which the source sends in stop-and-copy; before the source commits.
            assertThat(loads).allSatisfy(load -> assertThat(load.ts()).isBetween(stopCopy.ts(), switchover.ts()));
            // R4 after COMMIT, and CONFIRM (the source's completion) after it.
            assertThat(resumes).allSatisfy(resume -> {
                assertThat(resume.ts()).isGreaterThanOrEqualTo(switchover.ts());
                assertThat(resume.end()).isLessThanOrEqualTo(completed.ts());
            });
            assertThat(phase(merged, dst, "resuming").ts()).isGreaterThan(phase(merged, src, "setup").ts());

            // A span per pass over memory, in order, inside pre-copy.
            Span precopy = phase(merged, src, "precopy");
            List<Span> passes = merged.stream().filter(s -> s.cat().equals("pass")).toList();
            assertThat(passes).hasSize(source.path("passes").size()).hasSizeGreaterThanOrEqualTo(2);
            for (int i = 0; i < passes.size(); i++) {
                Span pass = passes.get(i);
                assertThat(pass.name()).isEqualTo("pass " + i);
                assertThat(pass.args().path("pages").asLong()).isEqualTo(source.path("passes").get(i).path("pages").asLong());
                assertThat(pass.ts()).isGreaterThanOrEqualTo(precopy.ts());
                assertThat(pass.end()).isLessThanOrEqualTo(precopy.end());
                if (i > 0) {
                    assertThat(pass.ts()).isGreaterThanOrEqualTo(passes.get(i - 1).end());
                }
            }
            assertThat(spans(destinationTrace)).noneMatch(s -> s.cat().equals("pass"));
        }
    }
}
