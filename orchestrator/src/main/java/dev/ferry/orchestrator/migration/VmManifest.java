package dev.ferry.orchestrator.migration;

import com.fasterxml.jackson.core.JsonProcessingException;
import dev.ferry.device.Device;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKinds;
import dev.ferry.device.DeviceModelException;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import dev.ferry.orchestrator.api.FaultsJson;
import dev.ferry.orchestrator.api.Json;
import dev.ferry.orchestrator.api.Requests;
import java.io.IOException;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the source tells the destination about the VM (the VM_DESCRIPTION frame's JSON): enough to
 * check compatibility and build the empty VM before anything else is sent. Device order is the
 * device index of DEVICE_DATA frames. {@code timeoutMs} is the migration's own limit, which the
 * destination keeps too, so a source that stays connected but never finishes cannot hold it for
 * longer; {@code source} is where the source daemon takes migrations itself, for the destination's view;
 * {@code capture} asks the destination to capture the session too, where it has a capture directory
 * ({@code capturePages}: with page data); {@code compression} names the codec page data comes compressed with,
 * absent (null) without, so that the destination checks it can decompress before anything moves.
 */
record VmManifest(String id, long memoryBytes, int vcpus, String initialMemory, Workload workload, String p2p,
                  List<DeviceEntry> devices, boolean vcpusRunning, String migration, int chunkBytes, String backedChunks,
                  long timeoutMs, String source, boolean dryRun, boolean verify, boolean capture, boolean capturePages,
                  @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL)
                  String compression) {

    record Workload(long dirtyBytesPerSecond, long p2pOpsPerSecond, long doorbellsPerSecond, long seed,
                    long deviceDirtyBytesPerSecond) {
    }

    /**
     * A device: its slot, its configuration, the version of the data format its stream is in (F8), and the faults
     * it injects (null for none), which go with it.
     */
    record DeviceEntry(String id, String kind, int formatVersion, boolean ndma, boolean precopy, boolean pri, long memoryBytes,
                       long reinitMs, int slot, Requests.Faults faults) {
    }

    /**
     * The description of {@code vm} for a migration under {@code policy}: its {@code timeoutMs} bounds the
     * destination's wait too; with {@code dryRun} only the handshake and the compatibility check (F8)
     * happen, nothing is built or moved; with {@code verify} the destination keeps its verify digest up to
     * date from the first page on.
     */
    static VmManifest of(Vm vm, boolean vcpusRunning, String migrationId, MigrationPolicy policy, String source) {
        VmConfig config = vm.config();
        List<DeviceEntry> devices = new ArrayList<>();
        for (Device device : vm.devices()) {
            DeviceConfig d = device.config();
            devices.add(new DeviceEntry(d.id(), d.kind().label(), Compatibility.formatVersion(d.kind()), d.ndma(), d.preCopy(),
                    d.pri(), d.memoryBytes(), d.reinitMs(), device.slot(), FaultsJson.of(d.faults())));
        }
        WorkloadConfig w = config.workload();
        return new VmManifest(config.id(), config.memoryBytes(), config.vcpus(), config.initialMemory().label(),
                new Workload(w.dirtyBytesPerSecond(), w.p2pOpsPerSecond(), w.doorbellsPerSecond(), w.seed(),
                        w.deviceDirtyBytesPerSecond()),
                config.p2p().label(), devices, vcpusRunning, migrationId, vm.memory().store().chunkBytes(),
                HexFormat.of().formatHex(vm.memory().backedChunks().toByteArray()), policy.timeoutMs(), source, policy.dryRun(),
                policy.verify(), policy.capture(), policy.capturePages(),
                policy.compression() == dev.ferry.protocol.compression.PageCodec.NONE ? null : policy.compression().label());
    }

    /**
     * The chunks of guest memory that hold data on the source: the destination allocates these ahead
     * of the pages (the others arrive as zero pages, which need no memory).
     */
    BitSet backed() throws MigrationFailure {
        try {
            return BitSet.valueOf(HexFormat.of().parseHex(backedChunks == null ? "" : backedChunks));
        } catch (IllegalArgumentException e) {
            throw new MigrationFailure(MigrationFailure.INCOMPATIBLE, "unreadable backed-chunk map");
        }
    }

    byte[] toJson() {
        try {
            return Json.mapper().writeValueAsBytes(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("VM description not serializable", e);
        }
    }

    /**
     * Parses and checks the description's structure. Whether this daemon can host its devices is the
     * compatibility check's (F8); whether the device model would build the VM, {@link #config()}'s.
     */
    static VmManifest parse(byte[] json) throws MigrationFailure {
        VmManifest description;
        try {
            description = Json.mapper().readValue(json, VmManifest.class);
        } catch (IOException e) {
            throw new MigrationFailure(MigrationFailure.INCOMPATIBLE, "unreadable VM description: " + Json.describe(e));
        }
        if (description == null || description.devices() == null || description.workload() == null) {
            throw new MigrationFailure(MigrationFailure.INCOMPATIBLE, "incomplete VM description");
        }
        if (description.timeoutMs() < 1) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, "the VM description's timeoutMs must be positive");
        }
        return description;
    }

    /** The VM to build, its devices' kinds from {@code kinds} (what this daemon knows). */
    VmConfig config(DeviceKinds kinds) throws MigrationFailure {
        try {
            List<DeviceConfig> configs = new ArrayList<>();
            for (DeviceEntry entry : devices) {
                configs.add(new DeviceConfig(entry.id(), kinds.of(entry.kind()), entry.ndma(), entry.precopy(), entry.pri(),
                        entry.memoryBytes(), entry.reinitMs(), FaultsJson.toModel(entry.faults())));
            }
            return new VmConfig(id, memoryBytes, vcpus, InitialMemory.of(initialMemory),
                    new WorkloadConfig(workload.dirtyBytesPerSecond(), workload.p2pOpsPerSecond(), workload.doorbellsPerSecond(),
                            workload.seed(), workload.deviceDirtyBytesPerSecond()), P2pPolicy.of(p2p), configs);
        } catch (DeviceModelException e) {
            throw new MigrationFailure(MigrationFailure.INCOMPATIBLE, "this daemon cannot host the VM: " + e.getMessage());
        }
    }

    Map<String, Integer> slots() {
        Map<String, Integer> slots = new LinkedHashMap<>();
        for (DeviceEntry entry : devices) {
            slots.put(entry.id(), entry.slot());
        }
        return slots;
    }
}
