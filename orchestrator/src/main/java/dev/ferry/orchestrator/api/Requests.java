package dev.ferry.orchestrator.api;

import java.util.List;

/**
 * Request bodies. Fields are boxed so that an absent field is told apart from a zero; defaults are
 * applied where the request is turned into a configuration. Unknown fields are rejected (400).
 */
public final class Requests {
    private Requests() {
    }

    /** {@code POST /v1/vms}. {@code running} (default true) starts the vCPUs at once. */
    public record CreateVm(String id, Long memoryBytes, Integer vcpus, String initialMemory, Workload workload, String p2p,
                           List<CreateDevice> devices, Boolean running) {
    }

    public record Workload(Long dirtyBytesPerSecond, Long p2pOpsPerSecond, Long doorbellsPerSecond, Long seed,
                           Long deviceDirtyBytesPerSecond) {
    }

    /** {@code POST /v1/vms/{vm}/devices}, and each entry of a VM's {@code devices}. */
    public record CreateDevice(String id, String kind, Boolean ndma, Boolean precopy, Boolean pri, Long memoryBytes, Long reinitMs) {
    }

    /** {@code POST /v1/migrations}. */
    public record StartMigration(String vm, String destination, Long downtimeLimitMs, Long maxBandwidthBytesPerSecond,
                                 Integer channels, Integer maxIterations, Long timeoutMs, Boolean autoConverge, Boolean verify,
                                 Boolean dryRun, Boolean capture, Boolean capturePages) {
    }

    /** {@code PATCH /v1/migrations/{id}}: new settings for a running migration, either or both. */
    public record UpdateMigration(Long maxBandwidthBytesPerSecond, Long downtimeLimitMs) {
    }

    /** {@code POST /v1/drain}: every VM to {@code destination}, at most {@code maxParallel} (default 2) at once. */
    public record StartDrain(String destination, Integer maxParallel) {
    }
}
