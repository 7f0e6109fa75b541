package dev.ferry.orchestrator.api;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.device.Device;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.DeviceKinds;
import dev.ferry.device.DeviceModelException;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.MigrationState;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.VmDigest;
import dev.ferry.device.vm.WorkloadConfig;
import dev.ferry.orchestrator.vm.ManagedVm;
import dev.ferry.orchestrator.vm.VmManager;
import io.netty.handler.codec.http.HttpMethod;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/** {@code /v1/vms} and {@code /v1/vms/{vm}/devices}. */
public final class VmResource {
    private static final long DEFAULT_MEMORY = 256L << 20;

    private final VmManager vms;
    private final DeviceKinds kinds;

    /** @param kinds the device kinds this daemon knows: a device's {@code kind} names one of them */
    public VmResource(VmManager vms, DeviceKinds kinds) {
        this.vms = vms;
        this.kinds = kinds;
    }

    public void register(Router router) {
        router.addBlocking(HttpMethod.POST, "/v1/vms", this::create);
        router.add(HttpMethod.GET, "/v1/vms", request -> ApiResponse.ok(Map.of("vms", vms.list().stream().map(Views::vm).toList())));
        router.add(HttpMethod.GET, "/v1/vms/{vm}", request -> ApiResponse.ok(Views.vm(vms.get(request.parameter("vm")))));
        router.addBlocking(HttpMethod.DELETE, "/v1/vms/{vm}", request -> {
            vms.delete(request.parameter("vm"));
            return ApiResponse.noContent();
        });
        router.addBlocking(HttpMethod.POST, "/v1/vms/{vm}/pause", request -> ApiResponse.ok(Views.vm(vms.pause(request.parameter("vm")))));
        router.addBlocking(HttpMethod.POST, "/v1/vms/{vm}/resume", request -> ApiResponse.ok(Views.vm(vms.resume(request.parameter("vm")))));
        router.addBlocking(HttpMethod.GET, "/v1/vms/{vm}/digest", this::digest);

        router.addBlocking(HttpMethod.POST, "/v1/vms/{vm}/devices", this::hotPlug);
        router.add(HttpMethod.GET, "/v1/vms/{vm}/devices/{dev}",
                request -> ApiResponse.ok(Views.device(vms.device(request.parameter("vm"), request.parameter("dev")))));
        router.addBlocking(HttpMethod.DELETE, "/v1/vms/{vm}/devices/{dev}", request -> {
            vms.unplug(request.parameter("vm"), request.parameter("dev"));
            return ApiResponse.noContent();
        });
        router.addBlocking(HttpMethod.PUT, "/v1/vms/{vm}/devices/{dev}/state", this::setState);
        router.addBlocking(HttpMethod.PUT, "/v1/vms/{vm}/devices/{dev}/migration-state", this::setMigrationState);
        router.addBlocking(HttpMethod.POST, "/v1/vms/{vm}/devices/{dev}/reset",
                request -> ApiResponse.ok(Views.device(vms.reset(request.parameter("vm"), request.parameter("dev")))));
    }

    private ApiResponse create(ApiRequest request) {
        Requests.CreateVm body = request.body(Requests.CreateVm.class);
        VmConfig config = vmConfig(body, kinds);
        ManagedVm vm = vms.create(config, body.running() == null || body.running());
        return ApiResponse.created(Views.vm(vm));
    }

    private ApiResponse digest(ApiRequest request) {
        VmDigest digest = vms.digest(request.parameter("vm"));
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("vm", digest.vm());
        body.put("memory", digest.memory());
        body.put("devices", digest.devices());
        return ApiResponse.ok(body);
    }

    private ApiResponse hotPlug(ApiRequest request) {
        Requests.CreateDevice body = request.body(Requests.CreateDevice.class);
        String vmId = request.parameter("vm");
        int index = vms.get(vmId).vm().devices().size();
        Device device = vms.hotPlug(vmId, deviceConfig(body, index, kinds));
        return ApiResponse.created(Views.device(device));
    }

    private ApiResponse setState(ApiRequest request) {
        JsonNode value = singleField(request.bodyTree(), "deviceState");
        DeviceState requested;
        if (value.isTextual()) {
            try {
                requested = DeviceState.parse(value.asText());
            } catch (IllegalArgumentException e) {
                throw new ApiException(io.netty.handler.codec.http.HttpResponseStatus.BAD_REQUEST, "invalid_field", e.getMessage(),
                        Map.of("field", "deviceState"));
            }
        } else if (value.isIntegralNumber() && value.canConvertToInt() && value.asInt() >= 0) {
            requested = DeviceState.of(value.asInt());
        } else {
            throw new ApiException(io.netty.handler.codec.http.HttpResponseStatus.BAD_REQUEST, "invalid_field",
                    "deviceState is a name like \"RUNNING|SAVING\" or a non-negative integer", Map.of("field", "deviceState"));
        }
        return ApiResponse.ok(Views.device(vms.setDeviceState(request.parameter("vm"), request.parameter("dev"), requested)));
    }

    private ApiResponse setMigrationState(ApiRequest request) {
        JsonNode value = singleField(request.bodyTree(), "migrationState");
        MigrationState target;
        if (value.isTextual()) {
            try {
                target = MigrationState.valueOf(value.asText().trim().toUpperCase(java.util.Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new ApiException(io.netty.handler.codec.http.HttpResponseStatus.BAD_REQUEST, "invalid_field",
                        "unknown v2 migration state '" + value.asText() + "'", Map.of("field", "migrationState"));
            }
        } else if (value.isIntegralNumber() && value.canConvertToInt() && value.asInt() >= 0) {
            int number = value.asInt();
            if (number >= MigrationState.values().length) {
                // V2: a value of 8 or more fails like any request the device cannot serve.
                Device device = vms.device(request.parameter("vm"), request.parameter("dev"));
                throw ApiException.conflict("transition_failed", "v2 migration state " + number + " does not exist (V2)",
                        Map.of("deviceState", device.state().label(), "deviceStateBits", device.state().bits(), "rule", "V2",
                                "path", List.of()));
            }
            target = MigrationState.ofValue(number);
        } else {
            throw new ApiException(io.netty.handler.codec.http.HttpResponseStatus.BAD_REQUEST, "invalid_field",
                    "migrationState is a v2 state name like \"STOP_COPY\" or its number", Map.of("field", "migrationState"));
        }
        String vmId = request.parameter("vm");
        String deviceId = request.parameter("dev");
        Device.V2Result result = vms.setMigrationState(vmId, deviceId, target);
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("device", Views.device(vms.device(vmId, deviceId)));
        body.put("path", result.path().stream().map(Enum::name).toList());
        return ApiResponse.ok(body);
    }

    /** The body must be an object with exactly this one field. */
    private static JsonNode singleField(JsonNode body, String field) {
        if (!body.isObject()) {
            throw ApiException.badRequest("invalid_request", "the body is an object with the field " + field);
        }
        Iterator<String> names = body.fieldNames();
        while (names.hasNext()) {
            String name = names.next();
            if (!name.equals(field)) {
                throw new ApiException(io.netty.handler.codec.http.HttpResponseStatus.BAD_REQUEST, "unknown_field",
                        "unknown field '" + name + "'", Map.of("field", name));
            }
        }
        JsonNode value = body.get(field);
        if (value == null || value.isNull()) {
            throw new ApiException(io.netty.handler.codec.http.HttpResponseStatus.BAD_REQUEST, "invalid_field",
                    field + " is required", Map.of("field", field));
        }
        return value;
    }

    // ---- request to configuration -------------------------------------------------------------

    static VmConfig vmConfig(Requests.CreateVm body, DeviceKinds kinds) {
        String id = body.id() == null ? "vm-" + UUID.randomUUID().toString().substring(0, 8) : body.id();
        long memory = body.memoryBytes() == null ? DEFAULT_MEMORY : body.memoryBytes();
        int vcpus = body.vcpus() == null ? 1 : body.vcpus();
        try {
            InitialMemory initial = body.initialMemory() == null ? InitialMemory.ZERO : InitialMemory.of(body.initialMemory());
            P2pPolicy p2p = body.p2p() == null ? P2pPolicy.AUTO : P2pPolicy.of(body.p2p());
            List<DeviceConfig> devices = new ArrayList<>();
            List<Requests.CreateDevice> requested = body.devices() == null ? List.of() : body.devices();
            for (int i = 0; i < requested.size(); i++) {
                if (requested.get(i) == null) {
                    throw ApiException.invalid("devices[" + i + "] is null");
                }
                devices.add(deviceConfig(requested.get(i), i, kinds));
            }
            return new VmConfig(id, memory, vcpus, initial, workload(body.workload()), p2p, devices);
        } catch (DeviceModelException e) {
            throw VmManager.translate(e);
        }
    }

    static WorkloadConfig workload(Requests.Workload body) {
        if (body == null) {
            return WorkloadConfig.IDLE;
        }
        long dirty = body.dirtyBytesPerSecond() == null ? 0 : body.dirtyBytesPerSecond();
        long p2p = body.p2pOpsPerSecond() == null ? 0 : body.p2pOpsPerSecond();
        long doorbells = body.doorbellsPerSecond() == null ? WorkloadConfig.defaultDoorbells(dirty) : body.doorbellsPerSecond();
        long seed = body.seed() == null ? 1 : body.seed();
        long deviceDirty = body.deviceDirtyBytesPerSecond() == null ? 0 : body.deviceDirtyBytesPerSecond();
        return new WorkloadConfig(dirty, p2p, doorbells, seed, deviceDirty);
    }

    static DeviceConfig deviceConfig(Requests.CreateDevice body, int index, DeviceKinds kinds) {
        if (body.kind() == null) {
            throw new ApiException(io.netty.handler.codec.http.HttpResponseStatus.BAD_REQUEST, "invalid_field",
                    "a device needs a kind: " + kinds.known(), Map.of("field", "kind"));
        }
        try {
            DeviceKind kind = kinds.of(body.kind());
            DeviceConfig config = DeviceConfig.of(body.id() == null ? kind.label() + index : body.id(), kind);
            if (body.ndma() != null) {
                config = config.withNdma(body.ndma());
            }
            if (body.precopy() != null) {
                config = config.withPreCopy(body.precopy());
            }
            if (body.memoryBytes() != null) {
                config = config.withMemoryBytes(body.memoryBytes());
            }
            if (body.pri() != null) {
                config = config.withPri(body.pri());
            }
            if (body.reinitMs() != null) {
                config = config.withReinitMs(body.reinitMs());
            }
            if (body.faults() != null) {
                config = config.withFaults(FaultsJson.toModel(body.faults()));
            }
            return config;
        } catch (DeviceModelException e) {
            throw VmManager.translate(e);
        }
    }
}
