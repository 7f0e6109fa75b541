package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.ferry.orchestrator.config.ConfigLoader;
import dev.ferry.orchestrator.config.FerrydConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

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

    /** The options of ferryd itself and of ferryd ctl and its commands, as the parser takes them. */
    private static final Set<String> DAEMON_AND_CTL_OPTIONS = options();

    private static Set<String> options() {
        CommandLine ferryd = Main.commandLine(System.out, System.err);
        Set<String> names = new TreeSet<>(ferryd.getCommandSpec().optionsMap().keySet());
        Deque<CommandLine> ctl = new ArrayDeque<>(List.of(ferryd.getSubcommands().get("ctl")));
        while (!ctl.isEmpty()) {
            CommandLine command = ctl.pop();
            names.addAll(command.getCommandSpec().optionsMap().keySet());
            ctl.addAll(command.getSubcommands().values());
        }
        return names;
    }

    /** Every {@code --flag} in the text is one ferryd or ferryd ctl takes, or one of {@code foreign}. */
    private static void assertKnownFlags(Path file, String text, String... foreign) {
        Matcher flags = FLAG.matcher(text);
        while (flags.find()) {
            String flag = flags.group(1);
            if (List.of(foreign).contains(flag)) {
                continue;
            }
            assertThat(DAEMON_AND_CTL_OPTIONS).as("%s uses %s", file, flag).contains(flag);
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
        assertThat(kinds).containsExactly("DaemonSet", "PodDisruptionBudget", "NetworkPolicy");

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

    /**
     * A VMM daemon per node whose restart loses every VM in it: a DaemonSet updated only on delete,
     * no voluntary eviction, patient probes, no API token mounted, not root (by number), and only
     * its two ports open. (KubernetesSchemaTest checks the same file against the API's schemas.)
     */
    @Test
    void theKubernetesManifestKeepsTheDaemonsVmsSafe() throws Exception {
        List<JsonNode> documents = yamlDocuments(DEPLOY.resolve("kubernetes/ferryd.yaml"));
        JsonNode daemonSet = documents.get(0).path("spec");
        assertThat(daemonSet.path("updateStrategy").path("type").asText()).isEqualTo("OnDelete");
        JsonNode pod = daemonSet.path("template").path("spec");
        assertThat(pod.path("automountServiceAccountToken").isBoolean() && !pod.path("automountServiceAccountToken").asBoolean()).isTrue();
        assertThat(pod.path("securityContext").path("runAsNonRoot").asBoolean()).isTrue();
        assertThat(pod.path("securityContext").path("runAsUser").asInt()).isEqualTo(10001);
        JsonNode container = pod.path("containers").get(0);
        for (String probe : List.of("startupProbe", "readinessProbe", "livenessProbe")) {
            assertThat(container.path(probe).path("timeoutSeconds").asInt()).as(probe).isGreaterThan(1);
            assertThat(container.path(probe).path("httpGet").path("path").asText()).as(probe).isEqualTo("/v1/health");
        }
        assertThat(container.path("securityContext").path("allowPrivilegeEscalation").asBoolean(true)).isFalse();

        JsonNode budget = documents.get(1).path("spec");
        assertThat(budget.path("minAvailable").asInt()).isGreaterThanOrEqualTo(10000);
        assertThat(budget.path("selector")).isEqualTo(daemonSet.path("selector"));

        JsonNode policy = documents.get(2).path("spec");
        assertThat(policy.path("podSelector")).isEqualTo(daemonSet.path("selector"));
        List<Integer> ports = new ArrayList<>();
        for (JsonNode rule : policy.path("ingress")) {
            for (JsonNode port : rule.path("ports")) {
                ports.add(port.path("port").asInt());
            }
            assertThat(rule.path("from").size()).as("an ingress rule limited to some peers").isPositive();
        }
        assertThat(ports).containsExactly(7070, 7071);
    }

    /**
     * The image: its base an argument, its user a number, and a health check that starts no JVM; the
     * compose file builds it with the same default base and has no top-level name (Debian's
     * docker-compose 1.29 refuses one).
     */
    @Test
    void theImageAndComposeFileWorkWithPlainEngines() throws Exception {
        List<String> dockerfile = Files.readString(DEPLOY.resolve("container/Dockerfile")).lines()
                .filter(line -> !line.startsWith("#") && !line.isBlank()).toList();
        Matcher arg = Pattern.compile("ARG BASE_IMAGE=(\\S+)").matcher(dockerfile.get(0));
        assertThat(arg.matches()).as(dockerfile.get(0)).isTrue();
        assertThat(dockerfile.get(1)).isEqualTo("FROM ${BASE_IMAGE}");
        assertThat(dockerfile).anyMatch(line -> line.matches("USER [0-9]+:[0-9]+"));
        int check = dockerfile.indexOf(dockerfile.stream().filter(l -> l.startsWith("HEALTHCHECK")).findFirst().orElseThrow());
        // The instruction and its continuation line.
        String healthcheck = dockerfile.get(check) + dockerfile.get(check + 1);
        assertThat(healthcheck).contains("/v1/health").doesNotContain("ferryctl").doesNotContain("java");
        assertThat(Files.readString(Path.of("..", ".dockerignore"))).contains("!orchestrator/target/ferryd.jar");

        JsonNode compose = yamlDocuments(DEPLOY.resolve("compose/compose.yaml")).get(0);
        assertThat(compose.has("name")).isFalse();
        assertThat(compose.path("services").path("source").path("build").path("args").path("BASE_IMAGE").asText())
                .isEqualTo("${FERRY_BASE_IMAGE:-" + arg.group(1) + "}");
    }

    /** ferryctl never runs with the daemon's JVM options (DeployWrappersIT runs both wrappers). */
    @Test
    void ferryctlHasJvmOptionsOfItsOwn() throws Exception {
        String ferryctl = Files.readString(DEPLOY.resolve("bin/ferryctl"));
        assertThat(ferryctl).contains("JAVA_OPTS=${FERRYCTL_JAVA_OPTS:-").doesNotContain("${JAVA_OPTS");
    }

    /**
     * The unit's hardening, and its install steps: run as written (into a temporary directory, not
     * /etc/ferry), they leave a token ferryd accepts, readable by the service's group only.
     */
    @Test
    void theSystemdUnitIsHardenedAndItsInstallStepsMakeAToken() throws Exception {
        String unit = Files.readString(DEPLOY.resolve("systemd/ferryd.service"));
        assertThat(unit.lines()).contains("SystemCallFilter=@system-service", "ProtectProc=invisible", "UMask=0077",
                "NoNewPrivileges=yes", "CapabilityBoundingSet=");
        assertThat(unit).doesNotContain("MemoryDenyWriteExecute=yes");

        // The commands are the comment lines indented by three spaces, some with a comment after them.
        List<String> steps = unit.lines().takeWhile(line -> line.startsWith("#")).filter(line -> line.startsWith("#   "))
                .map(line -> line.substring(4).replaceFirst("\\s+# .*$", ""))
                .filter(line -> line.contains("/etc/ferry/token")).toList();
        assertThat(steps).hasSizeGreaterThanOrEqualTo(2);
        Path etc = Files.createDirectories(dir.resolve("etc-ferry"));
        long gid = (Integer) Files.getAttribute(etc, "unix:gid");
        String script = String.join("\n", steps).replace("/etc/ferry", etc.toString()).replace("chgrp ferry ", "chgrp " + gid + " ");
        Process sh = new ProcessBuilder("sh", "-euc", script).redirectErrorStream(true).start();
        String output = new String(sh.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertThat(sh.waitFor()).as("%s\n%s", script, output).isZero();
        Path token = etc.resolve("token");
        assertThat(java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(token))).isEqualTo("rw-r-----");
        assertThat(Files.readString(token).strip()).hasSizeGreaterThanOrEqualTo(32);
        assertThat(ConfigLoader.load(List.of("--token-file", token.toString())).hasToken()).isTrue();
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
