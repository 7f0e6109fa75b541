package dev.ferry.orchestrator.vm;

import dev.ferry.device.Device;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceModelException;
import dev.ferry.device.TransitionListener;
import dev.ferry.device.memory.ChunkPool;
import dev.ferry.device.memory.PageStore;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.MigrationState;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.VmDigest;
import dev.ferry.orchestrator.Managed;
import dev.ferry.orchestrator.Refusal;
import dev.ferry.orchestrator.config.FerrydConfig;
import dev.ferry.orchestrator.metrics.FerryMetrics;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The VMs this daemon hosts, and every operation on them and their devices that the API offers. Each
 * operation takes the VM's lock and checks its state: a VM that is migrating takes no changes
 * ({@code migration_in_progress}).
 */
public final class VmManager implements Managed {
    private static final Logger LOG = LoggerFactory.getLogger(VmManager.class);

    private final FerrydConfig config;
    private final FerryMetrics metrics;
    private final ConcurrentMap<String, ManagedVm> vms = new ConcurrentHashMap<>();
    private final ChunkPool memoryPool;
    private final boolean prefill;
    private final Vm.Options vmOptions;
    private final long memoryBudget;
    /** VMs admitted but not registered yet, and their memory: guarded by {@code admission}. */
    private final Object admission = new Object();
    private int admittedVms;
    private long admittedBytes;
    private final AtomicLong retiredMmioWhileStopped = new AtomicLong();
    private final TransitionListener counting;

    /**
     * The memory budget is {@code maxTotalMemoryBytes}, or what the JVM's direct-memory limit allows if
     * that is less or none is set: VMs beyond it are refused with {@code insufficient_memory} instead of
     * failing on some write later.
     */
    public VmManager(FerrydConfig config, FerryMetrics metrics) {
        this.config = config;
        this.metrics = metrics;
        long jvm = MemoryBudget.ofThisJvm();
        if (config.maxTotalMemoryBytes() > jvm) {
            LOG.warn("maxTotalMemoryBytes {} is more than this JVM can hold ({} bytes); raise -XX:MaxDirectMemorySize."
                    + " Using {}", config.maxTotalMemoryBytes(), jvm, jvm);
        }
        this.memoryBudget = config.maxTotalMemoryBytes() > 0 ? Math.min(config.maxTotalMemoryBytes(), jvm) : jvm;
        this.memoryPool = new ChunkPool(config.memoryPoolBytes(), PageStore.DEFAULT_CHUNK_BYTES);
        this.vmOptions = Vm.Options.DEFAULT.withMemoryPool(memoryPool);
        this.prefill = config.memoryPoolPrefill();
        this.counting = new TransitionListener() {
            @Override
            public void transitioned(Device device, DeviceState requested, TransitionResult result, long start, long duration) {
                metrics.deviceTransition(device.kind().label(), result.succeeded());
            }
        };
        metrics.gauge("ferry.vms", "VMs hosted, incoming and migrated ones included", vms, Map::size);
        metrics.gauge("ferry.memory.pool.bytes", "freed guest memory kept, zeroed, for the next VM", memoryPool,
                ChunkPool::keptBytes);
        metrics.gauge("ferry.memory.mapped.bytes", "guest and device memory mapped in huge pages now, VMs' and the pool's"
                + " (not in the JDK's direct buffers)", memoryPool, pool -> ChunkPool.mappedBytes());
        metrics.gauge("ferry.memory.committed.bytes", "guest and device memory of the hosted VMs, at most the budget",
                this, VmManager::committedBytes);
        metrics.gauge("ferry.memory.budget.bytes", "guest and device memory this daemon hands out at most", this,
                VmManager::memoryBudgetBytes);
        metrics.monotonic("ferry.memory.pool.reused.chunks", "guest memory chunks handed to a VM from the pool instead of"
                + " allocated", memoryPool, ChunkPool::reusedChunks);
        metrics.monotonic("ferry.device.mmio.while.stopped",
                "MMIO writes that reached a stopped device and were not applied (D12)", this, VmManager::mmioWhileStoppedTotal);
    }

    /** With {@code memoryPoolPrefill}, starts filling the pool; {@link #stop()} ends that with the pool. */
    @Override
    public void start() {
        // Says which: on a host where each 4 KiB first touch is expensive, the two differ by an order of magnitude.
        String mode = ChunkPool.hugePageMode();
        LOG.info("guest memory: {}", ChunkPool.hugePages()
                ? "2 MiB chunks mapped and advised as huge pages (transparent huge pages: " + mode
                        + (mode.equals("never") ? ", so 4 KiB pages)" : ")")
                : "2 MiB chunks of the JDK's direct memory, in 4 KiB pages (JNA missing or unable to load, or not 64-bit Linux)");
        if (prefill) {
            prefill();
        }
    }

    /** Closes every VM: vCPUs and device engines stop; the memory pool is freed. */
    @Override
    public void stop() {
        for (ManagedVm managed : vms.values()) {
            managed.vm().close();
        }
        vms.clear();
        memoryPool.close();
    }

    /** What VMs are built with here: guest memory from this daemon's pool. */
    public Vm.Options vmOptions() {
        return vmOptions;
    }

    /** Bytes of guest and device memory this daemon may hand out in all. */
    public long memoryBudgetBytes() {
        return memoryBudget;
    }

    /** Guest and device memory of the hosted VMs and of those admitted and being built. */
    public long committedBytes() {
        long total = 0;
        for (ManagedVm managed : vms.values()) {
            total += footprint(managed.vm());
        }
        synchronized (admission) {
            return total + admittedBytes;
        }
    }

    // ---- VMs -----------------------------------------------------------------------------------

    /** Boots a VM; its vCPUs run when {@code running}. */
    public ManagedVm create(VmConfig vmConfig, boolean running) {
        ManagedVm managed;
        try (Admission admitted = admit(vmConfig)) {
            Vm vm = deviceModel(() -> Vm.boot(vmConfig, vmOptions));
            managed = new ManagedVm(vm, running ? VmState.RUNNING : VmState.PAUSED);
            admitted.register(managed);
        }
        Vm vm = managed.vm();
        vm.devices().forEach(d -> d.addListener(counting));
        if (running) {
            vm.startVcpus();
        }
        LOG.info("created VM {} ({} MiB, {} devices, {})", vm.id(), vmConfig.memoryBytes() >> 20, vmConfig.devices().size(),
                managed.state().label());
        return managed;
    }

    /**
     * Builds the shell of an incoming migration's VM (R1) and registers it; it shows as
     * {@code incoming}. Refused, before anything is allocated, as {@link #admit} refuses.
     */
    public ManagedVm buildIncoming(VmConfig vmConfig, Map<String, Integer> slots, String migrationId) {
        retireMigratedShell(vmConfig.id());
        try (Admission admitted = admit(vmConfig)) {
            Vm vm = deviceModel(() -> Vm.incoming(vmConfig, slots, vmOptions));
            ManagedVm managed = new ManagedVm(vm, VmState.INCOMING);
            managed.beginMigration(migrationId, VmState.INCOMING);
            admitted.register(managed);
            vm.devices().forEach(d -> d.addListener(counting));
            return managed;
        }
    }

    /**
     * A VM coming back to a daemon it was migrated away from replaces the stopped shell it left here:
     * the shell is only kept for inspection, and migrating a VM back must not need a manual delete.
     */
    private void retireMigratedShell(String id) {
        ManagedVm existing = vms.get(id);
        if (existing == null) {
            return;
        }
        existing.lock().lock();
        try {
            if (existing.state() != VmState.MIGRATED || !vms.remove(id, existing)) {
                return;
            }
        } finally {
            existing.lock().unlock();
        }
        retire(existing);
        LOG.info("VM {} comes back: the shell it left when it was migrated away is deleted", id);
    }

    /**
     * Fills the pool in the background, within the memory budget: memory touched now, while nothing waits
     * for it, so that an incoming VM does not pay the first touch of each page (on a virtual machine that
     * can cost more than the network) during its migration.
     */
    private void prefill() {
        long bytes = memoryPool.capacityBytes();
        long start = System.nanoTime();
        // The room is what the budget leaves with whatever VMs arrive meanwhile: admission counts a VM whole.
        memoryPool.prefill(bytes, () -> memoryBudget - committedBytes() - memoryPool.keptBytes())
                .whenComplete((kept, failure) -> {
                    long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                    if (failure != null) {
                        LOG.warn("memory pool prefill stopped after {} ms: {}", millis, failure.toString());
                    } else {
                        LOG.info("memory pool prefilled: {} of {} bytes in {} ms", kept, bytes, millis);
                    }
                });
    }

    /**
     * A VM of this configuration may come: its size within {@code maxVmMemoryBytes}, its id free, fewer
     * than {@code maxVms} VMs, and its memory within what is left of the budget (after trimming the
     * pool if need be). Until the admission is closed, its VM counts as hosted.
     */
    private Admission admit(VmConfig vmConfig) {
        for (DeviceConfig device : vmConfig.devices()) {
            requireHosted(device);
        }
        if (vmConfig.memoryBytes() > config.maxVmMemoryBytes()) {
            throw Refusal.invalid("memoryBytes " + vmConfig.memoryBytes() + " exceeds this daemon's limit of "
                    + config.maxVmMemoryBytes());
        }
        long bytes = footprint(vmConfig);
        synchronized (admission) {
            if (vms.containsKey(vmConfig.id())) {
                throw Refusal.conflict("duplicate_id", "a VM with id " + vmConfig.id() + " exists already");
            }
            if (vms.size() + admittedVms >= config.maxVms()) {
                throw Refusal.conflict("too_many_vms", "this daemon hosts at most " + config.maxVms() + " VMs");
            }
            long committed = committedBytes();
            long over = committed + bytes + memoryPool.keptBytes() - memoryBudget;
            if (over > 0) {
                memoryPool.trim(over);
            }
            if (committed + bytes > memoryBudget) {
                throw Refusal.conflict("insufficient_memory", "a VM of " + bytes + " bytes of guest and device memory"
                        + " does not fit: " + committed + " of this daemon's " + memoryBudget + " bytes are committed"
                        + " (raise -XX:MaxDirectMemorySize to host more)");
            }
            admittedVms++;
            admittedBytes += bytes;
        }
        return new Admission(vmConfig.id(), bytes);
    }

    /** A VM counted as hosted while it is built; {@link #register} makes it so, closing otherwise undoes it. */
    private final class Admission implements AutoCloseable {
        private final String id;
        private final long bytes;
        private boolean open = true;

        Admission(String id, long bytes) {
            this.id = id;
            this.bytes = bytes;
        }

        void register(ManagedVm managed) {
            synchronized (admission) {
                if (vms.putIfAbsent(id, managed) != null) {
                    managed.vm().close();
                    throw Refusal.conflict("duplicate_id", "a VM with id " + id + " exists already");
                }
                release();
            }
        }

        @Override
        public void close() {
            synchronized (admission) {
                release();
            }
        }

        private void release() {
            if (open) {
                open = false;
                admittedVms--;
                admittedBytes -= bytes;
            }
        }
    }

    private static long footprint(Vm vm) {
        long total = vm.memory().sizeBytes();
        for (Device device : vm.devices()) {
            total += device.config().memoryBytes();
        }
        return total;
    }

    /** Guest memory and every device's memory: what a VM may allocate at most. */
    private static long footprint(VmConfig vmConfig) {
        long total = vmConfig.memoryBytes();
        for (DeviceConfig device : vmConfig.devices()) {
            total += device.memoryBytes();
        }
        return total;
    }

    public ManagedVm get(String id) {
        ManagedVm managed = vms.get(id);
        if (managed == null) {
            throw Refusal.notFound("vm_not_found", "no VM " + id);
        }
        return managed;
    }

    public List<ManagedVm> list() {
        List<ManagedVm> all = new ArrayList<>(vms.values());
        all.sort(Comparator.comparing(ManagedVm::id));
        return all;
    }

    public int count() {
        return vms.size();
    }

    public void delete(String id) {
        ManagedVm managed = get(id);
        managed.lock().lock();
        try {
            requireNotMigrating(managed);
            vms.remove(id, managed);
        } finally {
            managed.lock().unlock();
        }
        retire(managed);
        LOG.info("deleted VM {}", id);
    }

    /** Removes an incoming VM whose migration failed: the destination discards its copy (F4). */
    public void discard(ManagedVm managed) {
        if (vms.remove(managed.id(), managed)) {
            retire(managed);
        }
    }

    private void retire(ManagedVm managed) {
        for (Device device : managed.vm().devices()) {
            retiredMmioWhileStopped.addAndGet(device.stats().mmioWhileStopped());
        }
        managed.vm().close();
    }

    /** M5: vCPUs stop, devices finish their work. */
    public ManagedVm pause(String id) {
        ManagedVm managed = get(id);
        withVm(managed, () -> {
            deviceModel(() -> {
                managed.vm().pause();
                return null;
            });
            managed.setState(VmState.PAUSED);
        });
        return managed;
    }

    /**
     * vCPUs run again. Devices a switchover of unknown outcome left stopped (F5) are brought back first:
     * resuming is the operator's decision that the destination does not run the VM. They go through
     * the grace state (every device runs without starting DMA before any starts it, as in a rollback);
     * a device in ERROR, or one that does not come back, is reset.
     */
    public ManagedVm resume(String id) {
        ManagedVm managed = get(id);
        String held = managed.heldBy();
        withVm(managed, () -> {
            Vm vm = managed.vm();
            for (Device device : vm.devices()) {
                if (device.state().isError()) {
                    vm.resetDevice(device.id());
                }
            }
            restore(vm, d -> d.config().ndma() ? DeviceState.RUNNING_NDMA : DeviceState.RUNNING);
            restore(vm, d -> DeviceState.RUNNING);
            vm.workload().setThrottle(0);
            managed.vm().resume();
            managed.release();
            managed.setState(VmState.RUNNING);
        });
        if (held != null) {
            LOG.info("VM {}, held after migration {}, resumed here by the operator", id, held);
        }
        return managed;
    }

    private static void restore(Vm vm, java.util.function.Function<Device, DeviceState> target) {
        for (Device device : vm.devices()) {
            DeviceState state = target.apply(device);
            if (!device.state().equals(state) && !device.setState(state).succeeded()) {
                vm.resetDevice(device.id());
            }
        }
    }

    /** The digest of a paused, idle VM (M5). */
    public VmDigest digest(String id) {
        ManagedVm managed = get(id);
        managed.lock().lock();
        try {
            if (managed.state() == VmState.MIGRATING || managed.state() == VmState.INCOMING) {
                throw Refusal.conflict("migration_in_progress", "VM " + id + " is being migrated");
            }
            if (managed.vm().vcpusRunning()) {
                throw Refusal.conflict("vm_running", "VM " + id + " is running; pause it to take its digest");
            }
            return deviceModel(() -> managed.vm().digest());
        } finally {
            managed.lock().unlock();
        }
    }

    // ---- devices -------------------------------------------------------------------------------

    public Device device(String vmId, String deviceId) {
        return get(vmId).vm().device(deviceId)
                .orElseThrow(() -> Refusal.notFound("device_not_found", "VM " + vmId + " has no device " + deviceId));
    }

    /** A device of a kind this daemon does not host (--device-kinds) is refused. */
    private void requireHosted(DeviceConfig device) {
        if (!config.deviceKinds().contains(device.kind().label())) {
            throw Refusal.invalid("device " + device.id() + ": this daemon hosts only " + String.join(", ", config.deviceKinds())
                    + " devices (--device-kinds), not " + device.kind().label());
        }
    }

    /** Hot-plug (M3: {@code ndma_required} when the device lacks NDMA while P2P is active). */
    public Device hotPlug(String vmId, DeviceConfig deviceConfig) {
        requireHosted(deviceConfig);
        ManagedVm managed = get(vmId);
        Device[] added = new Device[1];
        withVm(managed, () -> {
            synchronized (admission) {
                long committed = committedBytes();
                if (committed + deviceConfig.memoryBytes() > memoryBudget) {
                    throw Refusal.conflict("insufficient_memory", "device " + deviceConfig.id() + " with "
                            + deviceConfig.memoryBytes() + " bytes of memory does not fit: " + committed + " of this daemon's "
                            + memoryBudget + " bytes are committed");
                }
                added[0] = deviceModel(() -> managed.vm().hotPlug(deviceConfig));
            }
        });
        added[0].addListener(counting);
        return added[0];
    }

    public void unplug(String vmId, String deviceId) {
        ManagedVm managed = get(vmId);
        Device device = device(vmId, deviceId);
        withVm(managed, () -> {
            retiredMmioWhileStopped.addAndGet(device.stats().mmioWhileStopped());
            deviceModel(() -> {
                managed.vm().unplug(deviceId);
                return null;
            });
        });
    }

    /** A v1 state write; a failure is 409 {@code transition_failed} with the state the device is in now. */
    public Device setDeviceState(String vmId, String deviceId, DeviceState requested) {
        ManagedVm managed = get(vmId);
        Device device = device(vmId, deviceId);
        withVm(managed, () -> requireSuccess(device, device.setState(requested)));
        return device;
    }

    /** A v2 request: the path walked, or 409 with where the device stopped. */
    public Device.V2Result setMigrationState(String vmId, String deviceId, MigrationState target) {
        ManagedVm managed = get(vmId);
        Device device = device(vmId, deviceId);
        Device.V2Result[] result = new Device.V2Result[1];
        withVm(managed, () -> {
            result[0] = device.setMigrationState(target);
            if (!result[0].succeeded()) {
                requireSuccess(device, result[0].last(), Map.of("path", result[0].path().stream().map(Enum::name).toList()));
            }
        });
        return result[0];
    }

    /** D5, and the guest driver programs the device again. */
    public Device reset(String vmId, String deviceId) {
        ManagedVm managed = get(vmId);
        Device device = device(vmId, deviceId);
        withVm(managed, () -> managed.vm().resetDevice(deviceId));
        return device;
    }

    private static void requireSuccess(Device device, TransitionResult result) {
        requireSuccess(device, result, Map.of());
    }

    private static void requireSuccess(Device device, TransitionResult result, Map<String, Object> extra) {
        if (result.succeeded()) {
            return;
        }
        Map<String, Object> details = new java.util.LinkedHashMap<>();
        details.put("deviceState", device.state().label());
        details.put("deviceStateBits", device.state().bits());
        if (result instanceof TransitionResult.Rejected rejected) {
            details.put("rule", rejected.failure().rule());
        } else if (result instanceof TransitionResult.Failed failed) {
            details.put("rule", failed.failure().rule());
        }
        details.putAll(extra);
        throw Refusal.conflict("transition_failed", result.describe(), details);
    }

    // ---- migrations' view ----------------------------------------------------------------------

    /**
     * Hands a running or paused VM to a migration. Returns whether its vCPUs were running, which
     * decides how a rollback leaves it and whether the destination starts them.
     */
    public boolean claimForMigration(ManagedVm managed, String migrationId) {
        managed.lock().lock();
        try {
            requireNotMigrating(managed);
            if (managed.state() == VmState.MIGRATED) {
                throw Refusal.conflict("vm_migrated", "VM " + managed.id() + " was migrated away already");
            }
            if (managed.heldBy() != null) {
                throw Refusal.conflict("vm_held", "VM " + managed.id() + " is held for an operator: migration "
                        + managed.heldBy() + " failed past its commit (" + managed.heldFor() + "). Check the other daemon: if"
                        + " the VM runs there, delete it here; if not, resume it here",
                        Map.of("migration", managed.heldBy(), "reason", managed.heldFor()));
            }
            boolean running = managed.state() == VmState.RUNNING;
            managed.beginMigration(migrationId, VmState.MIGRATING);
            return running;
        } finally {
            managed.lock().unlock();
        }
    }

    /** MMIO that reached stopped devices, over every device this daemon ever hosted. */
    public long mmioWhileStoppedTotal() {
        long total = retiredMmioWhileStopped.get();
        for (ManagedVm managed : vms.values()) {
            for (Device device : managed.vm().devices()) {
                total += device.stats().mmioWhileStopped();
            }
        }
        return total;
    }

    private void withVm(ManagedVm managed, Runnable action) {
        managed.lock().lock();
        try {
            requireNotMigrating(managed);
            if (managed.state() == VmState.MIGRATED) {
                throw Refusal.conflict("vm_migrated", "VM " + managed.id() + " was migrated away; delete it");
            }
            action.run();
        } finally {
            managed.lock().unlock();
        }
    }

    private static void requireNotMigrating(ManagedVm managed) {
        if (managed.state() == VmState.MIGRATING || managed.state() == VmState.INCOMING) {
            throw Refusal.conflict("migration_in_progress", "VM " + managed.id() + " is being migrated by "
                    + managed.migrationId(), Map.of("migration", String.valueOf(managed.migrationId())));
        }
    }

    /** Runs a device-model operation, turning its refusals into API errors. */
    public static <T> T deviceModel(Supplier<T> operation) {
        try {
            return operation.get();
        } catch (DeviceModelException e) {
            throw translate(e);
        }
    }

    public static Refusal translate(DeviceModelException e) {
        return switch (e.code()) {
            case DeviceModelException.NDMA_REQUIRED -> Refusal.conflict("ndma_required", e.getMessage());
            case DeviceModelException.DUPLICATE_ID -> Refusal.conflict("duplicate_id", e.getMessage());
            case DeviceModelException.NOT_FOUND -> Refusal.notFound("not_found", e.getMessage());
            case DeviceModelException.NOT_IDLE -> Refusal.conflict("vm_running", e.getMessage());
            case DeviceModelException.TIMEOUT -> Refusal.conflict("timeout", e.getMessage());
            default -> Refusal.invalid(e.getMessage());
        };
    }
}
