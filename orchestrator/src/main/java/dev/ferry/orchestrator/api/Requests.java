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
    public record CreateDevice(String id, String kind, Boolean ndma, Boolean precopy, Boolean pri, Long memoryBytes, Long reinitMs,
                               Faults faults) {
    }

    /**
     * A device's injected faults ({@code DeviceFaults}), the same shape in a request, in the device's view and in
     * the VM description a migration carries (the faults go with the device). Every field is optional.
     *
     * @param stateWrites        state writes to fail, each once
     * @param windowReads        reads of the data window (a save session): short, or failing after some bytes
     * @param windowWrites       writes of the data window (a resume session): short, or failing after some bytes
     * @param corruptImageAtByte the byte at this offset of every saved stream is flipped as it is read; -1 or absent never
     * @param slowQuiesceMs      every wait for work in flight lasts at least this long
     */
    public record Faults(List<StateWriteFault> stateWrites, WindowFault windowReads, WindowFault windowWrites, Long corruptImageAtByte,
                         Long slowQuiesceMs) {
    }

    /**
     * Fails the {@code nth} state write (from 1, default 1) that reaches priority step {@code step}; {@code result}
     * {@code error} (the default) fails it there into ERROR, {@code refused} refuses it with the state unchanged.
     */
    public record StateWriteFault(String step, Integer nth, String result) {
    }

    /** Each read or write moves at most {@code maxBytes} (a short one); after {@code failAfterBytes} in a session, it fails. */
    public record WindowFault(Integer maxBytes, Long failAfterBytes) {
    }

    /** {@code POST /v1/migrations}. */
    public record StartMigration(String vm, String destination, Long downtimeLimitMs, Long maxBandwidthBytesPerSecond,
                                 Integer channels, Integer maxIterations, Long timeoutMs, Boolean autoConverge, Boolean verify,
                                 Boolean dryRun, Boolean capture, Boolean capturePages, String compression) {
    }

    /** {@code PATCH /v1/migrations/{id}}: new settings for a running migration, either or both. */
    public record UpdateMigration(Long maxBandwidthBytesPerSecond, Long downtimeLimitMs) {
    }

    /** {@code POST /v1/drain}: every VM to {@code destination}, at most {@code maxParallel} (default 2) at once. */
    public record StartDrain(String destination, Integer maxParallel) {
    }
}
