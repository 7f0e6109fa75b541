package dev.ferry.device.vm;

import dev.ferry.device.Device;
import dev.ferry.device.DeviceDigest;
import dev.ferry.device.DeviceBus;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceModelException;
import dev.ferry.device.DmaObserver;
import dev.ferry.device.Iommu;
import dev.ferry.device.IommuFault;
import dev.ferry.device.MmioSource;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.memory.ChunkPool;
import dev.ferry.device.memory.GuestMemory;
import dev.ferry.device.memory.PageGeometry;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A VM: guest memory, the IOMMU, devices in slots, and the vCPUs running the workload (SPEC §4).
 *
 * <p>{@link #boot} creates a fresh VM: memory initialised, devices RUNNING and programmed by the
 * synthetic guest driver (ring areas written into their registers), vCPUs parked until
 * {@link #startVcpus()}. {@link #incoming} creates the empty shell a migration resumes into: zero
 * memory and fresh, unprogrammed devices in the source's slots.
 */
public final class Vm implements AutoCloseable {
    private static final long QUIESCE_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(10);

    private final String id;
    private final VmConfig config;
    private final GuestMemory memory;
    private final ChunkPool memoryPool;
    private final Iommu iommu;
    private final Workload workload;
    private final Bus bus = new Bus();
    private final CopyOnWriteArrayList<Device> devices = new CopyOnWriteArrayList<>();
    private final ReentrantLock structure = new ReentrantLock();

    private final AtomicLong workVersion = new AtomicLong();
    private final ReentrantLock idleLock = new ReentrantLock();
    private final Condition idleChanged = idleLock.newCondition();
    private volatile int idleWaiters;
    private volatile boolean p2pActive;

    /**
     * Options that are not part of a VM's description.
     *
     * @param dmaObserver              sees every DMA as it starts and ends (tests)
     * @param pageRequestTimeoutMillis how long a PRI page request waits for its answer
     * @param memoryPool               where guest memory chunks come from and go back to
     */
    public record Options(DmaObserver dmaObserver, long pageRequestTimeoutMillis, ChunkPool memoryPool) {
        public static final Options DEFAULT = new Options(DmaObserver.NONE, 5_000, ChunkPool.NONE);

        public Options(DmaObserver dmaObserver, long pageRequestTimeoutMillis) {
            this(dmaObserver, pageRequestTimeoutMillis, ChunkPool.NONE);
        }

        /** These options with guest memory from {@code pool}. */
        public Options withMemoryPool(ChunkPool pool) {
            return new Options(dmaObserver, pageRequestTimeoutMillis, pool);
        }
    }

    private Vm(VmConfig config, Options options) {
        this.id = config.id();
        this.config = config;
        this.memory = new GuestMemory(config.memoryBytes(), options.memoryPool());
        this.memoryPool = options.memoryPool();
        this.iommu = new Iommu(memory, options.dmaObserver());
        this.workload = new Workload(id, config.vcpus(), config.workload(), memory, () -> devices,
                options.pageRequestTimeoutMillis());
    }

    /** Boots a fresh VM; its vCPUs are parked until {@link #startVcpus()}. */
    public static Vm boot(VmConfig config, Options options) {
        Vm vm = new Vm(config, options);
        try {
            if (config.initialMemory() == InitialMemory.RANDOM) {
                vm.fillRandom(config.workload().seed());
            } else if (config.initialMemory() == InitialMemory.MIXED) {
                vm.fillMixed(config.workload().seed());
            }
            for (int slot = 0; slot < config.devices().size(); slot++) {
                vm.plug(config.devices().get(slot), slot, true);
            }
            vm.updateP2p();
            vm.workload.start();
            vm.awaitQuiescent();
            return vm;
        } catch (RuntimeException e) {
            vm.close();
            throw e;
        }
    }

    public static Vm boot(VmConfig config) {
        return boot(config, Options.DEFAULT);
    }

    /**
     * The shell a migration resumes into (R1): zero memory, fresh RUNNING devices in the given slots,
     * nothing programmed, vCPUs parked.
     *
     * @param slots each device's slot on the source, by device id
     */
    public static Vm incoming(VmConfig config, Map<String, Integer> slots, Options options) {
        Vm vm = new Vm(config, options);
        try {
            for (DeviceConfig device : config.devices()) {
                Integer slot = slots.get(device.id());
                if (slot == null || slot < 0 || slot >= VmConfig.MAX_DEVICES) {
                    throw DeviceModelException.invalid("device " + device.id() + " has no valid slot");
                }
                VmConfig.requireRingRoom(config.memoryBytes(), slot + 1);
                vm.plug(device, slot, false);
            }
            vm.updateP2p();
            vm.workload.start();
            return vm;
        } catch (RuntimeException e) {
            vm.close();
            throw e;
        }
    }

    private void fillRandom(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        byte[] block = new byte[1 << 20];
        for (long address = 0; address < memory.sizeBytes(); address += block.length) {
            int length = (int) Math.min(block.length, memory.sizeBytes() - address);
            random.nextBytes(block);
            memory.store().write(address, block, 0, length);
        }
    }

    /** {@link InitialMemory#MIXED}: each page zero (left unwritten), text-like or random, from the seed. */
    private void fillMixed(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        byte[][] words = new byte[256][];
        for (int i = 0; i < words.length; i++) {
            words[i] = new byte[2 + random.nextInt(9)];
            for (int j = 0; j < words[i].length; j++) {
                words[i][j] = (byte) ('a' + random.nextInt(26));
            }
        }
        byte[] page = new byte[PageGeometry.PAGE_SIZE];
        for (long address = 0; address < memory.sizeBytes(); address += page.length) {
            int kind = random.nextInt(4);
            if (kind == 0) {
                continue;
            }
            if (kind == 3) {
                random.nextBytes(page);
            } else {
                int at = 0;
                while (at < page.length) {
                    byte[] word = words[random.nextInt(words.length)];
                    int n = Math.min(word.length, page.length - at);
                    System.arraycopy(word, 0, page, at, n);
                    at += n;
                    if (at < page.length) {
                        page[at++] = (byte) (random.nextInt(12) == 0 ? '\n' : ' ');
                    }
                }
            }
            memory.store().write(address, page, 0, page.length);
        }
    }

    private Device plug(DeviceConfig deviceConfig, int slot, boolean program) {
        Device device = Device.create(deviceConfig, slot, memoryPool);
        device.attach(bus);
        devices.add(device);
        if (program) {
            program(device);
        }
        return device;
    }

    /** The synthetic guest driver's probe: tells the device where its rings are. */
    private void program(Device device) {
        device.mmioWrite(Device.REG_RING_BASE, VmConfig.ringBase(memory.sizeBytes(), device.slot()), MmioSource.CPU);
        device.mmioWrite(Device.REG_RING_SIZE, VmConfig.RING_AREA_BYTES, MmioSource.CPU);
    }

    /** M2: peer MMIO is mapped only when the policy allows it. */
    private void updateP2p() {
        boolean allNdma = devices.stream().allMatch(d -> d.config().ndma());
        boolean active = config.p2p() != P2pPolicy.OFF && allNdma && !devices.isEmpty();
        iommu.mapPeers(active ? devices : List.of());
        p2pActive = active;
    }

    // ---- identity and parts --------------------------------------------------------------------

    public String id() {
        return id;
    }

    /** The configuration with the devices present now. */
    public VmConfig config() {
        List<DeviceConfig> now = new ArrayList<>();
        for (Device device : devices) {
            now.add(device.config());
        }
        return config.withDevices(now);
    }

    public GuestMemory memory() {
        return memory;
    }

    public Iommu iommu() {
        return iommu;
    }

    public Workload workload() {
        return workload;
    }

    public List<Device> devices() {
        return List.copyOf(devices);
    }

    public Optional<Device> device(String deviceId) {
        for (Device device : devices) {
            if (device.id().equals(deviceId)) {
                return Optional.of(device);
            }
        }
        return Optional.empty();
    }

    /** Each device's slot, by id. */
    public Map<String, Integer> slots() {
        Map<String, Integer> slots = new TreeMap<>();
        for (Device device : devices) {
            slots.put(device.id(), device.slot());
        }
        return slots;
    }

    /** Whether peer MMIO is mapped in the IOMMU now (M2). */
    public boolean p2pActive() {
        return p2pActive;
    }

    // ---- hot-plug ------------------------------------------------------------------------------

    /**
     * Hot-plugs a device, RUNNING (D5). M3: a device without NDMA cannot join a VM whose P2P
     * mappings are active; the VM is then unchanged.
     */
    public Device hotPlug(DeviceConfig deviceConfig) {
        structure.lock();
        try {
            if (device(deviceConfig.id()).isPresent()) {
                throw new DeviceModelException(DeviceModelException.DUPLICATE_ID,
                        "VM " + id + " already has a device " + deviceConfig.id());
            }
            if (!deviceConfig.ndma() && (p2pActive || config.p2p() == P2pPolicy.ON)) {
                throw new DeviceModelException(DeviceModelException.NDMA_REQUIRED,
                        "peer-to-peer is active in VM " + id + "; device " + deviceConfig.id() + " lacks NDMA (M3)");
            }
            if (devices.size() >= VmConfig.MAX_DEVICES) {
                throw DeviceModelException.invalid("VM " + id + " already has " + VmConfig.MAX_DEVICES + " devices");
            }
            int slot = freeSlot();
            VmConfig.requireRingRoom(memory.sizeBytes(), slot + 1);
            Device device = plug(deviceConfig, slot, true);
            updateP2p();
            workload.devicesChanged();
            return device;
        } finally {
            structure.unlock();
        }
    }

    private int freeSlot() {
        boolean[] used = new boolean[VmConfig.MAX_DEVICES];
        for (Device device : devices) {
            used[device.slot()] = true;
        }
        for (int slot = 0; slot < used.length; slot++) {
            if (!used[slot]) {
                return slot;
            }
        }
        throw DeviceModelException.invalid("no free device slot");
    }

    /** Removes a device: its engine stops and its BAR is unmapped. */
    public void unplug(String deviceId) {
        structure.lock();
        try {
            Device device = device(deviceId).orElseThrow(() -> new DeviceModelException(DeviceModelException.NOT_FOUND,
                    "VM " + id + " has no device " + deviceId));
            devices.remove(device);
            updateP2p();
            device.close();
            bus.workChanged();
        } finally {
            structure.unlock();
        }
    }

    /** D5 for one device, then the guest driver programs it again. */
    public void resetDevice(String deviceId) {
        Device device = device(deviceId).orElseThrow(() -> new DeviceModelException(DeviceModelException.NOT_FOUND,
                "VM " + id + " has no device " + deviceId));
        device.reset();
        program(device);
    }

    // ---- vCPUs ---------------------------------------------------------------------------------

    public boolean vcpusRunning() {
        return workload.mode() == Workload.Mode.RUNNING;
    }

    /** VCPU_RUNNING on. */
    public void startVcpus() {
        workload.setMode(Workload.Mode.RUNNING);
    }

    /**
     * VCPU_RUNNING off, at once: no vCPU completes page requests after this returns. This is S4; the
     * save flow runs it only after NDMA drained every device's work that needed a vCPU (S3).
     */
    public void stopVcpus() {
        workload.setMode(Workload.Mode.PARKED);
    }

    /**
     * M5: stops guest writes and doorbells, lets the devices finish their queued work (vCPUs still
     * completing page requests), then parks the vCPUs. Afterwards the VM's digest is stable.
     */
    public void pause() {
        workload.setMode(Workload.Mode.DRAINING);
        boolean idle = awaitQuiescent();
        workload.setMode(Workload.Mode.PARKED);
        if (!idle) {
            throw new DeviceModelException(DeviceModelException.TIMEOUT, "devices of VM " + id + " did not go idle");
        }
    }

    /** Runs the vCPUs again. */
    public void resume() {
        startVcpus();
    }

    /**
     * Slows the devices' own work ({@link WorkloadConfig#deviceDirtyBytesPerSecond()}) by this percentage,
     * 0–99, as {@link Workload#setThrottle} slows the vCPUs (auto-converge): what the source does when device
     * data keeps the downtime estimate above the limit (F9). 0 lets the devices work at full rate again.
     */
    public void setDeviceWorkThrottle(int percent) {
        workload.setDeviceWorkThrottle(percent);
    }

    /** The percentage {@link #setDeviceWorkThrottle} set. */
    public int deviceWorkThrottle() {
        return workload.deviceWorkThrottle();
    }

    /**
     * Waits until no device has work in flight or runnable work queued (work queued on a device that
     * cannot run now, stopped or NDMA, does not count).
     *
     * @return whether the VM became quiescent before the timeout
     */
    public boolean awaitQuiescent() {
        return awaitQuiescent(QUIESCE_TIMEOUT_NANOS);
    }

    private boolean awaitQuiescent(long timeoutNanos) {
        long deadline = System.nanoTime() + timeoutNanos;
        idleLock.lock();
        idleWaiters++;
        try {
            while (true) {
                long version = workVersion.get();
                if (allQuiescent() && workVersion.get() == version) {
                    return true;
                }
                long remaining = deadline - System.nanoTime();
                if (remaining <= 0) {
                    return false;
                }
                // Bounded wait: a change that raced with the check is seen at the latest here.
                idleChanged.awaitNanos(Math.min(remaining, TimeUnit.MILLISECONDS.toNanos(10)));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } finally {
            idleWaiters--;
            idleLock.unlock();
        }
    }

    private boolean allQuiescent() {
        for (Device device : devices) {
            if (!device.isQuiescent()) {
                return false;
            }
        }
        return true;
    }

    // ---- digest --------------------------------------------------------------------------------

    /**
     * SHA-256 over guest memory and each device's full state. Only for a VM whose vCPUs are parked
     * and whose devices are quiescent (M5); a VM and its migrated copy have equal digests.
     */
    public VmDigest digest() {
        requireStill();
        HexFormat hex = HexFormat.of();
        MessageDigest sha = DeviceDigest.sha256();
        sha.update("ferry-memory".getBytes(StandardCharsets.US_ASCII));
        DeviceDigest.digestPages(sha, memory.store());
        byte[] memoryDigest = sha.digest();

        Map<String, String> deviceDigests = new TreeMap<>();
        for (Device device : devices) {
            deviceDigests.put(device.id(), hex.formatHex(device.digest()));
        }
        MessageDigest vm = DeviceDigest.sha256();
        vm.update("ferry-vm".getBytes(StandardCharsets.US_ASCII));
        vm.update(memoryDigest);
        for (Map.Entry<String, String> entry : deviceDigests.entrySet()) {
            vm.update(entry.getKey().getBytes(StandardCharsets.UTF_8));
            vm.update((byte) 0);
            vm.update(hex.parseHex(entry.getValue()));
        }
        return new VmDigest(hex.formatHex(vm.digest()), hex.formatHex(memoryDigest), deviceDigests);
    }

    /**
     * Starts the digest a migration verifies at its frozen point, maintained incrementally: from now on
     * every write to guest or device memory marks what its next refresh hashes again. The caller closes it.
     */
    public IncrementalDigest openVerifyDigest() {
        return new IncrementalDigest(this);
    }

    /** Nothing changes the VM now: vCPUs parked (M5, or S4 and after) and every device quiescent. */
    void requireStill() {
        if (workload.mode() != Workload.Mode.PARKED) {
            throw new DeviceModelException(DeviceModelException.NOT_IDLE, "VM " + id + " is running; pause it first");
        }
        if (!awaitQuiescent(TimeUnit.SECONDS.toNanos(2))) {
            throw new DeviceModelException(DeviceModelException.NOT_IDLE, "devices of VM " + id + " are still working");
        }
    }

    /**
     * Stops the vCPUs and every device and frees the VM's memory. Nothing may use the VM afterwards;
     * a migration that sent its pages without copying must have closed its channels first.
     */
    @Override
    public void close() {
        workload.close();
        for (Device device : devices) {
            device.close();
        }
        memory.release();
    }

    /** The machine as the devices see it. */
    private final class Bus implements DeviceBus {
        @Override
        public void dmaWrite(Device initiator, long iova, byte[] src, int off, int length) throws IommuFault {
            iommu.write(initiator, iova, src, off, length);
        }

        @Override
        public void dmaRead(Device initiator, long iova, byte[] dst, int off, int length) throws IommuFault {
            iommu.read(initiator, iova, dst, off, length);
        }

        @Override
        public long guestMemoryBytes() {
            return memory.sizeBytes();
        }

        @Override
        public List<Long> peerDoorbells(Device initiator) {
            return iommu.peerDoorbells(initiator);
        }

        @Override
        public void pageRequest(Device initiator, long iova) throws InterruptedException, IommuFault {
            workload.pageRequests().request(initiator, iova);
        }

        @Override
        public void workChanged() {
            workVersion.incrementAndGet();
            if (idleWaiters > 0) {
                idleLock.lock();
                try {
                    idleChanged.signalAll();
                } finally {
                    idleLock.unlock();
                }
            }
        }
    }
}
