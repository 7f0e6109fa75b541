package dev.ferry.device;

import dev.ferry.device.memory.PageGeometry;
import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;

/**
 * A device's configuration: what it is and what it supports.
 *
 * @param id          unique within its VM
 * @param kind        the device kind
 * @param ndma        whether the device supports NDMA (default: true, {@code crypto} false)
 * @param preCopy     whether it has internal dirty logging and streams in pre-copy (default: true
 *                    for {@code gpu} only)
 * @param pri         whether its DMA raises page requests that a vCPU must complete (M4)
 * @param memoryBytes its internal memory (default per kind; {@code gpu} 64 MiB)
 * @param reinitMs    a kind that re-initialises ({@code gpu}): every this many milliseconds while RUNNING (and the vCPUs run) the
 *                    device re-partitions its memory, so its bulk state must be sent again (W8); 0 never
 *                    (the default); only kinds that re-initialise may have it
 * @param faults      faults the device injects into its migration interface ({@link DeviceFaults#NONE} for none)
 */
public record DeviceConfig(String id, DeviceKind kind, boolean ndma, boolean preCopy, boolean pri, long memoryBytes,
                           long reinitMs, DeviceFaults faults) {
    public static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,62}");
    public static final long MAX_MEMORY_BYTES = 1L << 30;
    /** A day: longer periods are as good as never. */
    public static final long MAX_REINIT_MS = 86_400_000L;

    public DeviceConfig {
        if (id == null || !ID.matcher(id).matches()) {
            throw DeviceModelException.invalid("device id must match " + ID.pattern() + ": " + id);
        }
        if (kind == null) {
            throw DeviceModelException.invalid("device " + id + " has no kind");
        }
        if (ndma && !kind.ndmaCapable()) {
            throw DeviceModelException.invalid("a " + kind + " device cannot support NDMA");
        }
        if (pri && !ndma) {
            // M4: without NDMA there is no grace state in which vCPUs can still complete page requests.
            throw new DeviceModelException(DeviceModelException.NDMA_REQUIRED,
                    "device " + id + ": page requests (pri) need NDMA support (M4)");
        }
        if (memoryBytes <= 0 || memoryBytes > MAX_MEMORY_BYTES || memoryBytes % PageGeometry.PAGE_SIZE != 0) {
            throw DeviceModelException.invalid("device " + id + ": memoryBytes must be a multiple of "
                    + PageGeometry.PAGE_SIZE + " between 4096 and " + MAX_MEMORY_BYTES + ": " + memoryBytes);
        }
        if (reinitMs < 0 || reinitMs > MAX_REINIT_MS) {
            throw DeviceModelException.invalid("device " + id + ": reinitMs must be between 0 and " + MAX_REINIT_MS + ": " + reinitMs);
        }
        if (reinitMs > 0 && !kind.reinitialises()) {
            throw DeviceModelException.invalid("device " + id + ": a " + kind + " does not re-initialise (reinitMs)");
        }
        if (faults == null) {
            faults = DeviceFaults.NONE;
        }
    }

    /** A device without injected faults. */
    public DeviceConfig(String id, DeviceKind kind, boolean ndma, boolean preCopy, boolean pri, long memoryBytes, long reinitMs) {
        this(id, kind, ndma, preCopy, pri, memoryBytes, reinitMs, DeviceFaults.NONE);
    }

    /** A device that never re-initialises ({@code reinitMs} 0). */
    public DeviceConfig(String id, DeviceKind kind, boolean ndma, boolean preCopy, boolean pri, long memoryBytes) {
        this(id, kind, ndma, preCopy, pri, memoryBytes, 0, DeviceFaults.NONE);
    }

    /** The defaults of its kind. */
    public static DeviceConfig of(String id, DeviceKind kind) {
        return new DeviceConfig(id, kind, kind.defaultNdma(), kind.defaultPreCopy(), false, kind.defaultMemoryBytes(), 0, DeviceFaults.NONE);
    }

    public DeviceConfig withNdma(boolean value) {
        return new DeviceConfig(id, kind, value, preCopy, pri, memoryBytes, reinitMs, faults);
    }

    public DeviceConfig withPreCopy(boolean value) {
        return new DeviceConfig(id, kind, ndma, value, pri, memoryBytes, reinitMs, faults);
    }

    public DeviceConfig withPri(boolean value) {
        return new DeviceConfig(id, kind, ndma, preCopy, value, memoryBytes, reinitMs, faults);
    }

    public DeviceConfig withMemoryBytes(long value) {
        return new DeviceConfig(id, kind, ndma, preCopy, pri, value, reinitMs, faults);
    }

    /** This device re-partitioning its memory every {@code value} ms while RUNNING (W8); 0 never. */
    public DeviceConfig withReinitMs(long value) {
        return new DeviceConfig(id, kind, ndma, preCopy, pri, memoryBytes, value, faults);
    }

    /** This device injecting {@code value} into its migration interface. */
    public DeviceConfig withFaults(DeviceFaults value) {
        return new DeviceConfig(id, kind, ndma, preCopy, pri, memoryBytes, reinitMs, value);
    }

    /**
     * The canonical form the migration stream carries and checks (D8): everything that must be equal
     * for a device's state to load into another device. {@code reinitMs} is not in it: how often a device
     * re-partitions is behaviour, like the workload, and a state saved under one period loads under any; nor are
     * the injected faults.
     */
    public byte[] canonicalBytes() {
        return ("kind=" + kind + ";ndma=" + ndma + ";precopy=" + preCopy + ";pri=" + pri + ";memoryBytes=" + memoryBytes)
                .getBytes(StandardCharsets.UTF_8);
    }
}
