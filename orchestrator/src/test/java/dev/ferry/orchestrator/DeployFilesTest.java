package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.ferry.orchestrator.cli.Ctl;
import dev.ferry.orchestrator.config.ConfigLoader;
import dev.ferry.orchestrator.config.FerrydConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The files in {@code deploy/} are read by other programs this build cannot run (systemd, Docker,
 * Kubernetes, Prometheus, Grafana); what can be checked here is that they parse and that every
 * ferryd flag and setting in them is one ferryd takes. (Their metric names are checked against a
 * live scrape in {@link MetricsTest}.)
 */
class DeployFilesTest {
    private static final Path DEPLOY = Path.of("..", "deploy");
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static final Pattern FLAG = Pattern.compile("\"?(--[a-z][a-z-]*)\"?");

    @TempDir
    Path dir;

    private static List<JsonNode> yamlDocuments(Path file) throws Exception {
        List<JsonNode> documents = new ArrayList<>();
        try (MappingIterator<JsonNode> it = YAML.readerFor(JsonNode.class).readValues(file.toFile())) {
            while (it.hasNext()) {
                documents.add(it.next());
            }
        }
        return documents;
    }

    /** Every {@code --flag} in the text is one ferryd or ferryd ctl documents, or one of {@code foreign}. */
    private static void assertKnownFlags(Path file, String text, String... foreign) {
        Matcher flags = FLAG.matcher(text);
        while (flags.find()) {
            String flag = flags.group(1);
            if (List.of(foreign).contains(flag)) {
                continue;
            }
            assertThat(ConfigLoader.USAGE + " " + Ctl.USAGE + " --help").as("%s uses %s", file, flag).contains(flag + " ");
        }
    }

    @Test
    void theServiceFilesParseAndUseOnlyFlagsFerrydTakes() throws Exception {
        Path compose = DEPLOY.resolve("compose/compose.yaml");
        JsonNode services = yamlDocuments(compose).get(0).path("services");
        assertThat(services.has("source") && services.has("destination")).isTrue();
        for (JsonNode service : services) {
            assertKnownFlags(compose, service.path("command").toString());
        }

        Path kubernetes = DEPLOY.resolve("kubernetes/ferryd.yaml");
        List<String> kinds = new ArrayList<>();
        for (JsonNode document : yamlDocuments(kubernetes)) {
            kinds.add(document.path("kind").asText());
            for (JsonNode container : document.path("spec").path("template").path("spec").path("containers")) {
                assertKnownFlags(kubernetes, container.path("args").toString());
                assertThat(container.path("readinessProbe").path("httpGet").path("path").asText()).isEqualTo("/v1/health");
            }
        }
        assertThat(kinds).containsExactly("Service", "StatefulSet");

        // Comments show other programs' commands; what runs is checked, with the options of the other
        // programs it runs (useradd's, HEALTHCHECK's, the JVM's) named.
        for (String file : List.of("container/Dockerfile", "systemd/ferryd.service", "bin/ferryd", "bin/ferryctl")) {
            String text = String.join("\n", Files.readString(DEPLOY.resolve(file)).lines()
                    .filter(line -> !line.trim().startsWith("#")).toList());
            assertKnownFlags(DEPLOY.resolve(file), text, "--system", "--gid", "--uid", "--home-dir", "--shell", "--interval",
                    "--timeout", "--start-period");
        }

        assertThat(yamlDocuments(DEPLOY.resolve("prometheus/prometheus.yml")).get(0).path("rule_files").toString())
                .contains("ferry-rules.yml");
        JsonNode rules = yamlDocuments(DEPLOY.resolve("prometheus/ferry-rules.yml")).get(0);
        assertThat(rules.path("groups").size()).isEqualTo(2);
        for (JsonNode group : rules.path("groups")) {
            for (JsonNode rule : group.path("rules")) {
                assertThat(rule.path("expr").asText()).as("rule %s", rule).isNotBlank();
                assertThat(rule.has("alert") || rule.has("record")).isTrue();
            }
        }
    }

    /**
     * The dashboard imports into any Grafana (its data source an input of the import) and shows each
     * daemon on its own: every query is filtered by the {@code instance} variable, and keeps
     * {@code instance} in what it sums by, so daemons are never added together.
     */
    @Test
    void theDashboardCanBeImportedAndShowsDaemonsApart() throws Exception {
        JsonNode dashboard = new ObjectMapper().readTree(DEPLOY.resolve("grafana/ferry-dashboard.json").toFile());
        assertThat(dashboard.path("__inputs").findValuesAsText("name")).containsExactly("DS_PROMETHEUS");
        assertThat(dashboard.path("__inputs").get(0).path("pluginId").asText()).isEqualTo("prometheus");
        List<String> required = new ArrayList<>();
        for (JsonNode requirement : dashboard.path("__requires")) {
            required.add(requirement.path("type").asText() + ":" + requirement.path("id").asText());
        }
        assertThat(required).contains("grafana:grafana", "datasource:prometheus");

        JsonNode variables = dashboard.path("templating").path("list");
        assertThat(variables.findValuesAsText("name")).containsExactly("datasource", "instance");
        assertThat(variables.get(0).path("current").path("value").asText()).isEqualTo("${DS_PROMETHEUS}");
        JsonNode instance = variables.get(1);
        assertThat(instance.path("query").path("query").asText()).isEqualTo("label_values(ferry_build_info, instance)");
        assertThat(instance.path("datasource").path("uid").asText()).isEqualTo("${datasource}");
        assertThat(instance.path("multi").asBoolean() && instance.path("includeAll").asBoolean()).isTrue();

        assertThat(dashboard.path("panels").size()).isGreaterThan(10);
        Pattern sumBy = Pattern.compile("\\b(?:sum|max|min|avg) by \\(([^)]*)\\)");
        for (JsonNode panel : dashboard.path("panels")) {
            String title = panel.path("title").asText();
            assertThat(required).as(title).contains("panel:" + panel.path("type").asText());
            assertThat(panel.path("datasource").path("uid").asText()).as(title).isEqualTo("${datasource}");
            assertThat(panel.path("targets").size()).as(title).isPositive();
            for (JsonNode target : panel.path("targets")) {
                String expr = target.path("expr").asText();
                assertThat(expr).as(title).contains("instance=~\"$instance\"");
                assertThat(expr).as(title).doesNotContain("sum(").doesNotContain("max(");
                Matcher by = sumBy.matcher(expr);
                while (by.find()) {
                    assertThat(by.group(1)).as("%s: %s", title, expr).contains("instance");
                }
                assertThat(target.path("legendFormat").asText()).as(title).contains("{{instance}}");
            }
        }
    }

    @Test
    void theExampleConfigLoadsAsFerrydWouldLoadIt() throws Exception {
        Path token = Files.writeString(dir.resolve("token"), "a-shared-token");
        String example = Files.readString(DEPLOY.resolve("systemd/ferryd.yaml"));
        assertThat(example).contains("tokenFile: /etc/ferry/token");
        Path config = Files.writeString(dir.resolve("ferryd.yaml"), example.replace("/etc/ferry/token", token.toString()));
        FerrydConfig loaded = ConfigLoader.load(List.of("--config", config.toString()));
        assertThat(loaded.migration().toString()).isEqualTo("0.0.0.0:7071");
        assertThat(loaded.hasToken()).isTrue();
        assertThat(loaded.memoryPoolBytes()).isEqualTo(1L << 30);
        assertThat(loaded.maxVmMemoryBytes()).isEqualTo(64L << 30);
    }
}
