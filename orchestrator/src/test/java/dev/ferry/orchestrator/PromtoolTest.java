package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prometheus' own tool on what the daemon exports and on the rules in deploy/prometheus: the scrape
 * of daemons that migrated passes its lint, the rules load, and every alert has unit tests (a case
 * where it fires and one where it does not) that pass, and the dashboard's queries parse.
 */
class PromtoolTest {
    private static final Path RULES_DIR = Path.of("..", "deploy", "prometheus").toAbsolutePath().normalize();
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static final String INSTALL = "apt-get install prometheus (Debian's package has promtool)";
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    private static Path promtool() {
        return ExternalTool.require("promtool", INSTALL);
    }

    private static String scrape(Ferryd daemon) throws Exception {
        HttpResponse<String> response = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create("http://" + daemon.http() + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(200);
        return response.body();
    }

    @Test
    void theScrapesOfTwoDaemonsThatMigratedPassPromtoolCheckMetrics() throws Exception {
        Path promtool = promtool();
        try (TestDaemons daemons = new TestDaemons()) {
            daemons.sourceApi.post("/v1/vms", TestDaemons.vm("vm1", true, 1L << 20, 20, TestDaemons.p2pDevices()));
            String id = daemons.migrate("vm1", Map.of()).path("id").asText();
            assertThat(daemons.awaitEnd(id).path("phase").asText()).isEqualTo("completed");
            daemons.awaitDestinationEnd(id);
            for (Ferryd daemon : List.of(daemons.source, daemons.destination)) {
                String text = scrape(daemon);
                assertThat(text).contains("ferry_migrations_finished_total");
                ExternalTool.Result lint = ExternalTool.run(RULES_DIR, TIMEOUT, text, List.of(promtool.toString(), "check", "metrics"));
                assertThat(lint.output()).as("promtool check metrics").isEmpty();
                assertThat(lint.exitCode()).as("promtool check metrics: %s", lint.output()).isZero();
            }
        }
    }

    @Test
    void theRulesPassPromtoolCheckRules() throws Exception {
        ExternalTool.Result check = ExternalTool.run(RULES_DIR, TIMEOUT, null,
                List.of(promtool().toString(), "check", "rules", "ferry-rules.yml"));
        assertThat(check.exitCode()).as(check.output()).isZero();
        assertThat(check.output()).contains("SUCCESS");
    }

    /** Grafana's variables replaced as it would, every query of the dashboard is valid PromQL. */
    @Test
    void theDashboardsQueriesParse(@TempDir Path dir) throws Exception {
        Path promtool = promtool();
        JsonNode dashboard = new ObjectMapper().readTree(RULES_DIR.resolveSibling("grafana").resolve("ferry-dashboard.json").toFile());
        List<Map<String, String>> rules = new ArrayList<>();
        for (JsonNode panel : dashboard.path("panels")) {
            for (JsonNode target : panel.path("targets")) {
                String expr = target.path("expr").asText().replace("$__rate_interval", "1m").replace("$instance", "a:7070|b:7070");
                rules.add(Map.of("record", "dashboard:panel" + panel.path("id").asText() + ":" + target.path("refId").asText(), "expr", expr));
            }
        }
        assertThat(rules).hasSizeGreaterThan(10);
        Path file = dir.resolve("dashboard-queries.yml");
        YAML.writeValue(file.toFile(), Map.of("groups", List.of(Map.of("name", "dashboard", "rules", rules))));
        ExternalTool.Result check = ExternalTool.run(dir, TIMEOUT, null, List.of(promtool.toString(), "check", "rules", file.toString()));
        assertThat(check.exitCode()).as(check.output()).isZero();
        assertThat(check.output()).contains("SUCCESS: " + rules.size() + " rules found");
    }

    @Test
    void everyAlertHasAFiringAndAQuietUnitTestAndTheyPass() throws Exception {
        Set<String> alerts = new TreeSet<>();
        for (JsonNode group : YAML.readTree(RULES_DIR.resolve("ferry-rules.yml").toFile()).path("groups")) {
            for (JsonNode rule : group.path("rules")) {
                if (rule.has("alert")) {
                    alerts.add(rule.path("alert").asText());
                }
            }
        }
        assertThat(alerts).hasSizeGreaterThan(5);
        Set<String> fires = new TreeSet<>();
        Set<String> quiet = new TreeSet<>();
        JsonNode tests = YAML.readTree(RULES_DIR.resolve("ferry-rules.test.yml").toFile());
        assertThat(tests.path("rule_files").toString()).contains("ferry-rules.yml");
        for (JsonNode test : tests.path("tests")) {
            for (JsonNode alertTest : test.path("alert_rule_test")) {
                (alertTest.path("exp_alerts").isEmpty() ? quiet : fires).add(alertTest.path("alertname").asText());
            }
        }
        assertThat(fires).as("alerts tested firing").containsAll(alerts);
        assertThat(quiet).as("alerts tested quiet").containsAll(alerts);

        ExternalTool.Result run = ExternalTool.run(RULES_DIR, TIMEOUT, null,
                List.of(promtool().toString(), "test", "rules", "ferry-rules.test.yml"));
        assertThat(run.exitCode()).as(run.output()).isZero();
        assertThat(run.output()).contains("SUCCESS");
    }
}
