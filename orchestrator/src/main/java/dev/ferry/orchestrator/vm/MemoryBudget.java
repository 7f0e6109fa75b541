package dev.ferry.orchestrator.vm;

import com.sun.management.HotSpotDiagnosticMXBean;
import java.lang.management.ManagementFactory;

/**
 * How much guest and device memory this JVM can hold: its direct-memory limit
 * ({@code -XX:MaxDirectMemorySize}, which defaults to the maximum heap size) less a reserve for the
 * network's buffers. Guest memory mapped in huge pages does not come out of the JDK's direct buffers,
 * but it counts against the same limit: the flag operators know stays the daemon's memory budget.
 * Guest memory is allocated lazily, so a VM that is admitted beyond the limit
 * would fail later, on some write; admission against this budget fails at once and clearly instead.
 */
final class MemoryBudget {
    /** Kept for Netty's buffers and everything else direct: a quarter of the limit, at most 256 MiB. */
    static final long MAX_RESERVE = 256L << 20;

    private MemoryBudget() {
    }

    static long ofThisJvm() {
        return budget(maxDirectMemory());
    }

    static long budget(long maxDirectMemory) {
        return maxDirectMemory - Math.min(MAX_RESERVE, maxDirectMemory / 4);
    }

    /** The JVM's direct-memory limit in bytes. */
    static long maxDirectMemory() {
        try {
            HotSpotDiagnosticMXBean hotspot = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            long configured = Long.parseLong(hotspot.getVMOption("MaxDirectMemorySize").getValue());
            if (configured > 0) {
                return configured;
            }
        } catch (RuntimeException e) {
            // Not HotSpot, or no such option: the JDK's default applies.
        }
        return Runtime.getRuntime().maxMemory();
    }
}
