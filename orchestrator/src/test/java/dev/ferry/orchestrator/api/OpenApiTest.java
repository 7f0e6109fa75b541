package dev.ferry.orchestrator.api;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.ferry.orchestrator.Ferryd;
import dev.ferry.orchestrator.TestDaemons;
import dev.ferry.orchestrator.drain.DrainView;
import dev.ferry.orchestrator.migration.MigrationView;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** {@code docs/openapi.yaml} describes exactly the routes the daemon serves and the shapes it answers with. */
class OpenApiTest {
    private static final Path DOCUMENT = Path.of("docs", "openapi.yaml");
    private static JsonNode openapi;
    private static Ferryd daemon;

    @BeforeAll
    static void load() throws Exception {
        openapi = new ObjectMapper(new YAMLFactory()).readTree(DOCUMENT.toFile());
        daemon = Ferryd.start(TestDaemons.base());
    }

    @AfterAll
    static void stop() {
        daemon.close();
    }

    /** "METHOD /path" of every operation, with whether it is open (served without the token). */
    private static Map<String, Boolean> documented() {
        Map<String, Boolean> operations = new TreeMap<>();
        for (Map.Entry<String, JsonNode> path : openapi.path("paths").properties()) {
            for (String method : new String[] {"get", "put", "post", "delete", "patch", "head", "options"}) {
                JsonNode operation = path.getValue().get(method);
                if (operation != null) {
                    JsonNode security = operation.get("security");
                    operations.put(method.toUpperCase() + " " + path.getKey(), security != null && security.isEmpty());
                }
            }
        }
        return operations;
    }

    @Test
    void everyRouteIsDocumentedAndEveryDocumentedOperationIsServed() {
        Map<String, Boolean> served = new TreeMap<>();
        for (Router.Route route : daemon.get(Router.class).routes()) {
            served.put(route.method().name() + " " + route.template(), route.open());
        }
        assertThat(documented()).as("operations of %s, and whether each needs no token", DOCUMENT).isEqualTo(served);
    }

    @Test
    void everyReferenceResolves() {
        Matcher refs = Pattern.compile("\"\\$ref\":\"#/components/(\\w+)/(\\w+)\"").matcher(openapi.toString());
        int count = 0;
        while (refs.find()) {
            count++;
            assertThat(openapi.path("components").path(refs.group(1)).has(refs.group(2))).as(refs.group()).isTrue();
        }
        assertThat(count).isPositive();
    }

    private static Set<String> schemaProperties(String schema) {
        Set<String> names = new TreeSet<>();
        openapi.path("components").path("schemas").path(schema).path("properties").fieldNames().forEachRemaining(names::add);
        return names;
    }

    private static Set<String> components(Class<? extends Record> type) {
        return Arrays.stream(type.getRecordComponents()).map(c -> c.getName()).collect(Collectors.toCollection(TreeSet::new));
    }

    @Test
    void theResourcesHaveTheDocumentedFields() {
        assertThat(schemaProperties("Vm")).isEqualTo(components(Views.VmView.class));
        assertThat(schemaProperties("Device")).isEqualTo(components(Views.DeviceView.class));
        assertThat(schemaProperties("Migration")).isEqualTo(components(MigrationView.class));
        assertThat(schemaProperties("CreateVm")).isEqualTo(components(Requests.CreateVm.class));
        assertThat(schemaProperties("CreateDevice")).isEqualTo(components(Requests.CreateDevice.class));
        assertThat(schemaProperties("Workload")).isEqualTo(components(Requests.Workload.class));
        assertThat(schemaProperties("DeviceFaults")).isEqualTo(components(Requests.Faults.class));
        assertThat(schemaProperties("StateWriteFault")).isEqualTo(components(Requests.StateWriteFault.class));
        assertThat(schemaProperties("WindowFault")).isEqualTo(components(Requests.WindowFault.class));
        assertThat(schemaProperties("StartMigration")).isEqualTo(components(Requests.StartMigration.class));
        assertThat(schemaProperties("UpdateMigration")).isEqualTo(components(Requests.UpdateMigration.class));
        assertThat(schemaProperties("StartDrain")).isEqualTo(components(Requests.StartDrain.class));
        assertThat(schemaProperties("Drain")).isEqualTo(components(DrainView.class));
        assertThat(schemaProperties("DrainVm")).isEqualTo(components(DrainView.VmEntry.class));
        assertThat(schemaProperties("DrainSummary")).isEqualTo(components(DrainView.Summary.class));
    }
}
