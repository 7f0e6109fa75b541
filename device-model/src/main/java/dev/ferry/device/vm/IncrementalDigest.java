package dev.ferry.device.vm;

import dev.ferry.device.Device;
import dev.ferry.device.DeviceDigest;
import dev.ferry.device.memory.MemoryDigest;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The digest a migration verifies at its frozen point, maintained incrementally so that verifying costs in
 * proportion to what changed (DESIGN: Digest). One per VM, from {@link Vm#openVerifyDigest()}.
 *
 * <p>Guest memory and each device's memory are tracked by a {@link MemoryDigest}: every write path of their
 * stores (vCPU writes, DMA, device memory writes, migration loads, zeroing, clears) marks a bit per change
 * unit, and {@link #refresh()} hashes again only the units marked since the last refresh. Call it as often
 * as suits, from any thread, while the VM runs (on the source after each pre-copy pass, on the destination
 * as pages and device data are applied): units that change during a refresh are simply hashed again next
 * time. At the frozen point (vCPUs parked, devices quiescent: stopped, or NDMA on the destination before
 * R4) {@link #digest()} refreshes, so it hashes only what changed since the last refresh, and combines the
 * memory values with each device's kind, configuration and state image (registers and queued work),
 * which are small and read whole.
 *
 * <p>Devices plugged or unplugged while it is open are picked up or dropped at the next refresh (a new
 * device's memory is hashed whole once). {@link #close()} stops the tracking; the digest must not outlive
 * its VM's use, but closing it after the VM closed is fine.
 */
public final class IncrementalDigest implements AutoCloseable {
    /** What a refresh hashed: units read, their bytes, and how long it took. */
    public record Work(long units, long bytes, long nanos) {
    }

    /** A frozen-point digest and what computing it hashed (only what changed since the last refresh). */
    public record Result(VerifyDigest digest, Work work) {
    }

    private final Vm vm;
    private final MemoryDigest memory;
    // Guarded by this.
    private final Map<Device, MemoryDigest> devices = new IdentityHashMap<>();
    private boolean closed;

    IncrementalDigest(Vm vm) {
        this.vm = vm;
        this.memory = MemoryDigest.open(vm.memory().store());
        // The first use of this code in a process loads classes and looks up the SHA-256 provider, which takes
        // milliseconds: a combination now, its value discarded, so that none of that falls on the frozen point.
        combine();
    }

    /**
     * Hashes again what changed since the last refresh (everything the first time), in guest memory and in
     * every device's memory. Callable while the VM runs.
     *
     * @throws IllegalStateException if the digest was closed or the VM's memory released
     */
    public synchronized Work refresh() {
        if (closed) {
            throw new IllegalStateException("the verify digest of VM " + vm.id() + " was closed");
        }
        long start = System.nanoTime();
        List<Device> present = vm.devices();
        syncDevices(present);
        MemoryDigest.Work work = memory.refresh();
        Iterator<Map.Entry<Device, MemoryDigest>> entries = devices.entrySet().iterator();
        while (entries.hasNext()) {
            Map.Entry<Device, MemoryDigest> entry = entries.next();
            try {
                work = work.plus(entry.getValue().refresh());
            } catch (IllegalStateException e) {
                if (vm.devices().contains(entry.getKey())) {
                    throw e;
                }
                // Unplugged since the list was taken: its memory went with it.
                entry.getValue().close();
                entries.remove();
            }
        }
        return new Work(work.units(), work.bytes(), System.nanoTime() - start);
    }

    /**
     * The digest at the frozen point: refreshes (hashing only what changed since the last refresh), then
     * combines guest memory and every device's full state. Equal for a VM and its migrated copy.
     *
     * @throws dev.ferry.device.DeviceModelException {@code vm_running} unless the vCPUs are parked and the
     *                                               devices quiescent
     */
    public synchronized Result digest() {
        vm.requireStill();
        Work work = refresh();
        return new Result(combine(), work);
    }

    /** Guest memory's value and each device's kind, configuration, state image and memory value, in one. */
    private VerifyDigest combine() {
        HexFormat hex = HexFormat.of();
        byte[] memoryDigest = memoryDigest("ferry-verify-memory", memory);
        Map<String, byte[]> byId = new TreeMap<>();
        for (Map.Entry<Device, MemoryDigest> entry : devices.entrySet()) {
            Device device = entry.getKey();
            MessageDigest sha = DeviceDigest.sha256();
            sha.update("ferry-verify-device".getBytes(StandardCharsets.US_ASCII));
            sha.update(device.kind().label().getBytes(StandardCharsets.US_ASCII));
            sha.update((byte) 0);
            byte[] config = device.configBytes();
            sha.update(longBytes(config.length));
            sha.update(config);
            byte[] state = device.stateImage();
            sha.update(longBytes(state.length));
            sha.update(state);
            sha.update(memoryDigest("ferry-verify-device-memory", entry.getValue()));
            byId.put(device.id(), sha.digest());
        }
        MessageDigest whole = DeviceDigest.sha256();
        whole.update("ferry-verify-vm".getBytes(StandardCharsets.US_ASCII));
        whole.update(memoryDigest);
        Map<String, String> deviceHex = new TreeMap<>();
        for (Map.Entry<String, byte[]> entry : byId.entrySet()) {
            whole.update(entry.getKey().getBytes(StandardCharsets.UTF_8));
            whole.update((byte) 0);
            whole.update(entry.getValue());
            deviceHex.put(entry.getKey(), hex.formatHex(entry.getValue()));
        }
        return new VerifyDigest(hex.formatHex(whole.digest()), hex.formatHex(memoryDigest), deviceHex);
    }

    /** Stops tracking guest and device memory. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        memory.close();
        devices.values().forEach(MemoryDigest::close);
        devices.clear();
    }

    private void syncDevices(List<Device> present) {
        List<Device> gone = new ArrayList<>();
        for (Device device : devices.keySet()) {
            if (!present.contains(device)) {
                gone.add(device);
            }
        }
        for (Device device : gone) {
            devices.remove(device).close();
        }
        for (Device device : present) {
            if (!devices.containsKey(device)) {
                devices.put(device, device.openMemoryDigest());
            }
        }
    }

    private static byte[] memoryDigest(String tag, MemoryDigest digest) {
        MessageDigest sha = DeviceDigest.sha256();
        sha.update(tag.getBytes(StandardCharsets.US_ASCII));
        sha.update(longBytes(digest.sizeBytes()));
        sha.update(longBytes(digest.value()));
        return sha.digest();
    }

    private static byte[] longBytes(long value) {
        return ByteBuffer.allocate(8).putLong(value).array();
    }
}
