package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.api.Json;
import dev.ferry.orchestrator.faults.FaultInjector;
import dev.ferry.orchestrator.migration.SourcePhase;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The migration event stream's ids: every event has one, a stream starts with {@code retry:}, and a
 * client that reconnects with {@code Last-Event-ID} goes on after that event instead of starting over.
 */
class MigrationEventsTest {
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private static TestDaemons daemons;

    @BeforeAll
    static void start() throws Exception {
        daemons = new TestDaemons();
    }

    @AfterAll
    static void stop() {
        daemons.close();
    }

    private record Event(long id, String type, JsonNode data) {
    }

    /** An open stream: its status, its {@code retry:} value and the events read from it so far. */
    private static final class Events implements AutoCloseable {
        final int status;
        long retry = -1;
        private final Stream<String> lines;
        private final Iterator<String> it;

        Events(HttpResponse<Stream<String>> response) {
            status = response.statusCode();
            lines = response.body();
            it = lines.iterator();
        }

        /** The next event, or null when the stream ended. */
        Event next() throws Exception {
            Long id = null;
            String type = "message";
            String data = null;
            while (it.hasNext()) {
                String line = it.next();
                if (line.startsWith("retry: ")) {
                    retry = Long.parseLong(line.substring(7));
                } else if (line.startsWith("id: ")) {
                    id = Long.parseLong(line.substring(4));
                } else if (line.startsWith("event: ")) {
                    type = line.substring(7);
                } else if (line.startsWith("data: ")) {
                    data = line.substring(6);
                } else if (line.isEmpty() && data != null) {
                    assertThat(id).as("every event has an id").isNotNull();
                    return new Event(id, type, Json.mapper().readTree(data));
                }
            }
            return null;
        }

        @Override
        public void close() {
            lines.close();
        }
    }

    private static Events open(String id, String lastEventId) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://" + daemons.source.http() + "/v1/migrations/" + id
                + "/events")).header("Authorization", "Bearer " + TestDaemons.TOKEN).timeout(Duration.ofSeconds(60));
        if (lastEventId != null) {
            request.header("Last-Event-ID", lastEventId);
        }
        return new Events(HTTP.send(request.build(), HttpResponse.BodyHandlers.ofLines()));
    }

    @Test
    void aReconnectingClientGoesOnAfterTheLastEventItSaw() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("sse1", false, 0, 0, TestDaemons.p2pDevices()));
        FaultInjector.Hold precopy = daemons.sourceFaults().holdAt(SourcePhase.PRECOPY);
        String id;
        long seen;
        Events live;
        try {
            id = daemons.migrate("sse1", Map.of()).path("id").asText();
            assertThat(precopy.awaitReached(60, TimeUnit.SECONDS)).isTrue();
            try (Events first = open(id, null)) {
                assertThat(first.status).isEqualTo(200);
                Event state = first.next();
                assertThat(first.retry).isEqualTo(1000);
                assertThat(state.type()).isEqualTo("progress");
                assertThat(state.data().path("phase").asText()).isEqualTo("precopy");
                // Progress comes four times a second while the migration is held: three more.
                long previous = state.id();
                for (int i = 0; i < 3; i++) {
                    Event next = first.next();
                    assertThat(next.id()).isGreaterThan(previous);
                    previous = next.id();
                }
                seen = previous;
            }
            // Meanwhile more events happen; the new stream starts right after the last one seen.
            try (Events resumed = open(id, Long.toString(seen))) {
                assertThat(resumed.status).isEqualTo(200);
                Event next = resumed.next();
                assertThat(resumed.retry).isEqualTo(1000);
                assertThat(next.id()).isEqualTo(seen + 1);
                assertThat(resumed.next().id()).isEqualTo(seen + 2);
            }
            // An id this migration never gave (another daemon's, or garbage): the state now, with a new id.
            for (String foreign : List.of("999999", "abc")) {
                try (Events fresh = open(id, foreign)) {
                    Event now = fresh.next();
                    assertThat(now.type()).isEqualTo("progress");
                    assertThat(now.id()).isGreaterThan(seen + 2).isLessThan(999999);
                }
            }
            live = open(id, Long.toString(seen));
        } finally {
            precopy.release();
        }

        // Opened while held, resumed after the same event: everything since, then the rest to the end.
        List<Event> rest = new ArrayList<>();
        try (Events stream = live) {
            Event event;
            while ((event = stream.next()) != null) {
                rest.add(event);
            }
        }
        assertThat(rest.get(0).id()).isEqualTo(seen + 1);
        for (int i = 1; i < rest.size(); i++) {
            assertThat(rest.get(i).id()).isEqualTo(rest.get(i - 1).id() + 1);
        }
        Event end = rest.get(rest.size() - 1);
        assertThat(end.type()).isEqualTo("end");
        assertThat(end.data().path("phase").asText()).isEqualTo("completed");
        assertThat(rest).extracting(Event::type).contains("phase");

        // A client that saw the end is told there is nothing more (204 stops a browser's EventSource).
        try (Events after = open(id, Long.toString(end.id()))) {
            assertThat(after.status).isEqualTo(204);
            assertThat(after.next()).isNull();
        }
        // A new client of an ended migration, or one that resumes from before its end, gets the end
        // (which holds the final state), with its id, and the stream closes.
        for (String lastId : java.util.Arrays.asList(null, Long.toString(seen))) {
            try (Events late = open(id, lastId)) {
                Event only = late.next();
                assertThat(only.type()).isEqualTo("end");
                assertThat(only.id()).isEqualTo(end.id());
                assertThat(late.next()).isNull();
            }
        }
    }
}
