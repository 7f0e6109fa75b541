package dev.ferry.orchestrator;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.cli.ApiClient;
import dev.ferry.orchestrator.config.Endpoint;
import dev.ferry.orchestrator.config.FerrydConfig;
import dev.ferry.orchestrator.faults.FaultInjector;
import dev.ferry.orchestrator.migration.FlowHooks;
import com.google.inject.AbstractModule;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.awaitility.Awaitility;

/** Two real daemons in this JVM, on 127.0.0.1 with ephemeral ports and a shared token. */
public final class TestDaemons implements AutoCloseable {
    public static final String TOKEN = "test-token-0123456789";

    public final Ferryd source;
    public final Ferryd destination;
    private final FaultInjector sourceFaults = new FaultInjector();
    private final FaultInjector destinationFaults = new FaultInjector();
    public final ApiClient sourceApi;
    public final ApiClient destinationApi;

    public TestDaemons() throws Exception {
        this(base());
    }

    public TestDaemons(FerrydConfig config) throws Exception {
        this(config, config);
    }

    public TestDaemons(FerrydConfig sourceConfig, FerrydConfig destinationConfig) throws Exception {
        this(sourceConfig, destinationConfig, List.of());
    }

    /** Two daemons, the source's bindings replaced by {@code sourceOverrides} too (a test's capture sink, say). */
    public TestDaemons(FerrydConfig sourceConfig, FerrydConfig destinationConfig, List<com.google.inject.Module> sourceOverrides)
            throws Exception {
        List<com.google.inject.Module> sourceModules = new java.util.ArrayList<>(sourceOverrides);
        sourceModules.add(hooks(sourceFaults));
        source = Ferryd.start(sourceConfig, sourceModules);
        Ferryd started;
        try {
            started = Ferryd.start(destinationConfig, List.of(hooks(destinationFaults)));
        } catch (Exception e) {
            source.close();
            throw e;
        }
        destination = started;
        sourceApi = new ApiClient(source.http().toString(), TOKEN);
        destinationApi = new ApiClient(destination.http().toString(), TOKEN);
    }

    /**
     * Two daemons of the {@link #base} configuration, for a test class's {@code @AutoClose} field: JUnit
     * starts them for each test and closes them after it.
     */
    public static TestDaemons started() {
        try {
            return new TestDaemons();
        } catch (Exception e) {
            throw new IllegalStateException("two test daemons did not start", e);
        }
    }

    public static FerrydConfig base() {
        Endpoint any = new Endpoint("127.0.0.1", 0);
        return FerrydConfig.defaults().withListeners(any, any).withToken(TOKEN.getBytes(StandardCharsets.UTF_8));
    }

    /** A module that binds the daemon's flow hooks to a test's injector. */
    public static com.google.inject.Module hooks(FaultInjector faults) {
        return new AbstractModule() {
            @Override
            protected void configure() {
                bind(FlowHooks.class).toInstance(faults);
            }
        };
    }

    public FaultInjector sourceFaults() {
        return sourceFaults;
    }

    public FaultInjector destinationFaults() {
        return destinationFaults;
    }

    /** A VM description with the usual devices and small sizes. */
    public static Map<String, Object> vm(String id, boolean running, long dirtyBytesPerSecond, long p2pOps, List<Map<String, Object>> devices) {
        return Map.of("id", id, "memoryBytes", 32L << 20, "vcpus", 2, "initialMemory", "random", "running", running,
                "workload", Map.of("dirtyBytesPerSecond", dirtyBytesPerSecond, "p2pOpsPerSecond", p2pOps, "seed", 17),
                "p2p", "auto", "devices", devices);
    }

    public static List<Map<String, Object>> p2pDevices() {
        return List.of(Map.of("id", "nic0", "kind", "nic"),
                Map.of("id", "gpu0", "kind", "gpu", "memoryBytes", 4L << 20),
                Map.of("id", "serial0", "kind", "serial"),
                Map.of("id", "nvme0", "kind", "nvme", "memoryBytes", 1L << 20));
    }

    public JsonNode migrate(String vm, Map<String, Object> extra) throws Exception {
        return migrateTo(destination.migration().toString(), vm, extra);
    }

    /** Migrates through another address that leads to the destination (a fault proxy). */
    public JsonNode migrateTo(String address, String vm, Map<String, Object> extra) throws Exception {
        Map<String, Object> request = new java.util.HashMap<>(extra);
        request.put("vm", vm);
        request.put("destination", address);
        return sourceApi.post("/v1/migrations", request);
    }

    /** The base configuration with short keepalives, so a silent peer is found out in {@code timeoutMs}. */
    public static FerrydConfig withKeepalive(long intervalMs, long timeoutMs) {
        return base().withTimeouts(new FerrydConfig.Timeouts(intervalMs, timeoutMs, 10_000, 10_000));
    }

    /**
     * F4 held: the source VM is back in {@code state} with every device RUNNING and no MMIO lost to a
     * stopped device, its digest (if given) unchanged, and the destination kept nothing.
     */
    public void assertRolledBack(String vm, JsonNode digest, String state) throws Exception {
        JsonNode view = sourceApi.get("/v1/vms/" + vm);
        org.assertj.core.api.Assertions.assertThat(view.path("state").asText()).isEqualTo(state);
        org.assertj.core.api.Assertions.assertThat(view.path("migration").isNull()).isTrue();
        org.assertj.core.api.Assertions.assertThat(view.path("hold").isNull()).isTrue();
        org.assertj.core.api.Assertions.assertThat(view.path("workload").path("throttlePercent").asLong()).isZero();
        org.assertj.core.api.Assertions.assertThat(view.path("workload").path("deviceThrottlePercent").asLong()).isZero();
        for (JsonNode device : view.path("devices")) {
            org.assertj.core.api.Assertions.assertThat(device.path("deviceState").asText()).as("device %s", device.path("id"))
                    .isEqualTo("RUNNING");
            org.assertj.core.api.Assertions.assertThat(device.path("stats").path("mmioWhileStopped").asLong()).isZero();
        }
        if (digest != null) {
            org.assertj.core.api.Assertions.assertThat(sourceApi.get("/v1/vms/" + vm + "/digest")).isEqualTo(digest);
        }
        Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> destinationApi.get("/v1/vms").path("vms").isEmpty());
    }

    /** Creates a paused VM of random memory with the usual devices and returns its digest. */
    public JsonNode pausedVm(String id) throws Exception {
        sourceApi.post("/v1/vms", vm(id, false, 0, 0, p2pDevices()));
        return sourceApi.get("/v1/vms/" + id + "/digest");
    }

    /** Waits until the migration has ended on the source, and returns its final view. */
    public JsonNode awaitEnd(String id) {
        JsonNode[] last = new JsonNode[1];
        Awaitility.await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(20)).until(() -> {
            last[0] = sourceApi.get("/v1/migrations/" + id);
            String phase = last[0].path("phase").asText();
            return phase.equals("completed") || phase.equals("failed") || phase.equals("cancelled");
        });
        return last[0];
    }

    /** Waits until the destination's side of a migration has ended too. */
    public JsonNode awaitDestinationEnd(String id) {
        JsonNode[] last = new JsonNode[1];
        Awaitility.await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(20)).until(() -> {
            try {
                last[0] = destinationApi.get("/v1/migrations/" + id);
            } catch (ApiClient.ApiError e) {
                return false;
            }
            String phase = last[0].path("phase").asText();
            return phase.equals("completed") || phase.equals("failed") || phase.equals("cancelled");
        });
        return last[0];
    }

    @Override
    public void close() {
        source.close();
        destination.close();
    }
}
