package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.orchestrator.metrics.FerryMetrics;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The Prometheus scrape: it parses, and after a migration carries its counters (DESIGN.md names). */
class MetricsTest {
    private static final Path DEPLOY = Path.of("..", "deploy");
    /** A metric name in a PromQL expression: the families this project and its binders export. */
    private static final Pattern METRIC = Pattern.compile("\\b(?:ferry|jvm|http_server|netty|process)_[a-z_]+\\b");
    private static final Pattern SAMPLE = Pattern.compile(
            "([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\]|\\\\.)*\",?)*\\})? (-?[0-9.eE+\\-]+|NaN|[+-]Inf)");

    /** Every sample by its name and labels as written. */
    private static Map<String, Double> parse(String text) {
        Map<String, Double> samples = new HashMap<>();
        for (String line : text.split("\n")) {
            if (line.isEmpty() || line.startsWith("#")) {
                assertThat(line.isEmpty() || line.startsWith("# HELP ") || line.startsWith("# TYPE ") || line.equals("# EOF"))
                        .as("comment line: %s", line).isTrue();
                continue;
            }
            Matcher m = SAMPLE.matcher(line);
            assertThat(m.matches()).as("sample line: %s", line).isTrue();
            samples.put(m.group(1) + (m.group(2) == null ? "" : m.group(2)), Double.parseDouble(m.group(3).replace("Inf", "Infinity")));
        }
        return samples;
    }

    private static String scrape(TestDaemons daemons, boolean source, String accept) throws Exception {
        Ferryd daemon = source ? daemons.source : daemons.destination;
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://" + daemon.http() + "/metrics"));
        if (accept != null) {
            request.header("Accept", accept);
        }
        HttpResponse<String> response = HttpClient.newHttpClient().send(request.build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(200);
        return response.body();
    }

    @Test
    void aMigrationShowsInBothDaemonsMetrics() throws Exception {
        try (TestDaemons daemons = new TestDaemons()) {
            daemons.sourceApi.post("/v1/vms", TestDaemons.vm("vm1", true, 2L << 20, 50, TestDaemons.p2pDevices()));
            daemons.sourceApi.get("/v1/vms/vm1");
            String id = daemons.migrate("vm1", Map.of()).path("id").asText();
            assertThat(daemons.awaitEnd(id).path("phase").asText()).isEqualTo("completed");
            daemons.awaitDestinationEnd(id);
            // And one that fails: nothing listens where it goes.
            int closed;
            try (java.net.ServerSocket socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
                closed = socket.getLocalPort();
            }
            daemons.sourceApi.post("/v1/vms", TestDaemons.vm("vm2", false, 0, 0, List.of()));
            String failed = daemons.sourceApi.post("/v1/migrations", Map.of("vm", "vm2", "destination", "127.0.0.1:" + closed))
                    .path("id").asText();
            assertThat(daemons.awaitEnd(failed).path("error").path("code").asText()).isEqualTo("connection_failed");

            Map<String, Double> source = parse(scrape(daemons, true, null));
            assertThat(source).containsEntry("ferry_migrations_started_total{role=\"source\"}", 2.0)
                    .containsEntry("ferry_migrations_finished_total{result=\"completed\",role=\"source\"}", 1.0)
                    .containsEntry("ferry_migration_downtime_seconds_count", 1.0)
                    .containsEntry("ferry_migration_duration_seconds_count{role=\"source\"}", 2.0)
                    .containsEntry("ferry_migrations_finished_total{result=\"failed\",role=\"source\"}", 1.0)
                    .containsEntry("ferry_migrations_active{role=\"source\"}", 0.0)
                    .containsEntry("ferry_vms", 2.0)
                    .containsEntry("ferry_migration_failures_total{reason=\"connection_failed\",role=\"source\"}", 1.0)
                    .containsEntry("ferry_device_mmio_while_stopped_total", 0.0)
                    .containsKey("ferry_build_info{version=\"" + Version.current() + "\"}")
                    .containsKey("ferry_migration_remaining_bytes")
                    .containsKey("ferry_migration_dirty_rate_bytes_per_second")
                    .containsKey("ferry_migration_throughput_bytes_per_second");
            assertThat(source.get("ferry_migration_iterations_total")).isGreaterThanOrEqualTo(1.0);
            assertThat(source.get("ferry_migration_sent_bytes_total{kind=\"memory\",phase=\"precopy\"}")).isGreaterThan(32.0 * (1 << 20));
            assertThat(source.get("ferry_migration_sent_bytes_total{kind=\"device\",phase=\"stop_copy\"}")).isPositive();
            assertThat(source.get("ferry_device_state_transitions_total{kind=\"gpu\",result=\"ok\"}")).isGreaterThanOrEqualTo(3.0);
            assertThat(source.keySet()).anyMatch(k -> k.startsWith("http_server_requests_seconds_count{")
                    && k.contains("uri=\"/v1/vms/{vm}\"") && k.contains("method=\"GET\""));
            assertThat(source.keySet()).anyMatch(k -> k.startsWith("jvm_memory_used_bytes"))
                    .anyMatch(k -> k.startsWith("process_cpu_usage"))
                    .anyMatch(k -> k.startsWith("netty_allocator_memory_used"))
                    .anyMatch(k -> k.startsWith("netty_eventexecutor_tasks_pending"));
            for (String key : source.keySet()) {
                assertThat(key).as("no VM or device ids as labels").doesNotContain("vm1").doesNotContain("vm2").doesNotContain("gpu0");
            }

            Map<String, Double> destination = parse(scrape(daemons, false, null));
            assertThat(destination).containsEntry("ferry_migrations_finished_total{result=\"completed\",role=\"destination\"}", 1.0);
            assertThat(destination.get("ferry_migration_received_bytes_total{kind=\"memory\",phase=\"precopy\"}")).isPositive();
            // Both sides label bytes with the source's phases, so sent and received line up per phase.
            Pattern phase = Pattern.compile("ferry_migration_(?:sent|received)_bytes_total\\{kind=\"[a-z]+\",phase=\"([a-z_0-9]+)\"\\}");
            Set<String> phases = new TreeSet<>();
            for (String key : source.keySet()) {
                Matcher m = phase.matcher(key);
                if (m.matches()) {
                    phases.add(m.group(1));
                }
            }
            for (String key : destination.keySet()) {
                Matcher m = phase.matcher(key);
                if (m.matches()) {
                    phases.add(m.group(1));
                }
            }
            assertThat(phases).containsExactlyInAnyOrderElementsOf(FerryMetrics.PHASES);
            assertThat(source.keySet()).as("no histogram maximum that decays to 0").noneMatch(k -> k.startsWith("ferry_migration_duration_seconds_max")
                    || k.startsWith("ferry_migration_downtime_seconds_max") || k.startsWith("http_server_requests_seconds_max"));

            // The alerting rules and the dashboard in deploy/ name only metrics the daemons export.
            Set<String> exported = new TreeSet<>();
            for (String key : source.keySet()) {
                exported.add(key.replaceFirst("\\{.*", ""));
            }
            for (String key : destination.keySet()) {
                exported.add(key.replaceFirst("\\{.*", ""));
            }
            for (Path file : List.of(DEPLOY.resolve("prometheus/ferry-rules.yml"), DEPLOY.resolve("grafana/ferry-dashboard.json"))) {
                Matcher names = METRIC.matcher(Files.readString(file));
                int count = 0;
                while (names.find()) {
                    count++;
                    assertThat(exported).as("%s names %s", file, names.group()).contains(names.group());
                }
                assertThat(count).as("metrics named in %s", file).isGreaterThan(5);
            }

            String open = scrape(daemons, true, "application/openmetrics-text; version=1.0.0");
            assertThat(open).contains("# TYPE ferry_migrations_started counter").endsWith("# EOF\n");
            assertThat(List.of(open.split("\n"))).contains("# EOF");
        }
    }
}
