package dev.ferry.device;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counters of one device instance. They describe what this instance did and are not part of the
 * migrated state: a migrated copy starts counting from zero.
 */
public final class DeviceStats {
    final LongAdder mmioWrites = new LongAdder();
    final LongAdder p2pReceived = new LongAdder();
    final LongAdder p2pIssued = new LongAdder();
    final LongAdder p2pUnavailable = new LongAdder();
    final LongAdder dmaReads = new LongAdder();
    final LongAdder dmaWrites = new LongAdder();
    final LongAdder dmaBytes = new LongAdder();
    final LongAdder interrupts = new LongAdder();
    final LongAdder mmioWhileStopped = new LongAdder();
    final LongAdder mmioDropped = new LongAdder();
    final LongAdder iommuFaults = new LongAdder();
    final LongAdder pageRequests = new LongAdder();
    final LongAdder operations = new LongAdder();
    final LongAdder operationErrors = new LongAdder();
    final LongAdder ownWrites = new LongAdder();
    final LongAdder reinits = new LongAdder();

    public long mmioWhileStopped() {
        return mmioWhileStopped.sum();
    }

    public long p2pIssued() {
        return p2pIssued.sum();
    }

    public long p2pReceived() {
        return p2pReceived.sum();
    }

    public long dmaOperations() {
        return dmaReads.sum() + dmaWrites.sum();
    }

    public long interrupts() {
        return interrupts.sum();
    }

    public long operations() {
        return operations.sum();
    }

    /** Re-initialisations begun: the device's bulk state changed whole (W8). */
    public long reinits() {
        return reinits.sum();
    }

    /** Writes of device memory done as the device's own work (not DMA; see {@link Device#ownWork}). */
    public long ownWrites() {
        return ownWrites.sum();
    }

    /** Every counter by its API name, in a stable order: a new, modifiable map each time. */
    public Map<String, Long> snapshot() {
        // Room for the counters and a kind's registers (Device#describeRegisters) without a rehash.
        Map<String, Long> out = new LinkedHashMap<>(64);
        out.put("mmioWrites", mmioWrites.sum());
        out.put("operations", operations.sum());
        out.put("dmaReads", dmaReads.sum());
        out.put("dmaWrites", dmaWrites.sum());
        out.put("dmaBytes", dmaBytes.sum());
        out.put("p2pIssued", p2pIssued.sum());
        out.put("p2pReceived", p2pReceived.sum());
        out.put("p2pUnavailable", p2pUnavailable.sum());
        out.put("interrupts", interrupts.sum());
        out.put("pageRequests", pageRequests.sum());
        out.put("mmioWhileStopped", mmioWhileStopped.sum());
        out.put("mmioDropped", mmioDropped.sum());
        out.put("iommuFaults", iommuFaults.sum());
        out.put("operationErrors", operationErrors.sum());
        out.put("ownWrites", ownWrites.sum());
        out.put("reinits", reinits.sum());
        return out;
    }
}
