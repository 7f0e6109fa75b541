package dev.ferry.orchestrator.migration;

import java.util.List;
import java.util.Map;

/**
 * The Migration resource of API.md, with the additions the daemon documents: when it ended, the pages
 * sent and their size, the estimated time left, the auto-converge throttle, each pass, per device the
 * bytes still pending, the phases with their times, and with {@code verify} how long this side took to
 * digest the frozen VM ({@code verifyMs}, part of the downtime).
 */
public record MigrationView(String id, String vm, String role, String peer, String phase, Map<String, Object> policy,
                            String startedAt, String finishedAt, Long setupTimeMs, long totalTimeMs, Long downtimeMs,
                            Long expectedDowntimeMs, long iterations, long transferredBytes, long remainingBytes,
                            MemoryProgress memoryBytes, long deviceBytes, long dirtyRateBytesPerSecond,
                            long throughputBytesPerSecond, Long etaMs, int throttlePercent, List<DeviceProgress> devices,
                            List<PassView> passes, Boolean verified, Long verifyMs, ErrorView error, List<PhaseView> phases) {

    /**
     * Guest memory: its size; bytes of page data sent or received (normal pages only: a zero page is a
     * flag on the wire); zero and normal pages; the page size.
     */
    public record MemoryProgress(long total, long transferred, long zeroPages, long normalPages, int pageSize) {
    }

    /** A device: its state now, its migration data sent or received, and what it has ready to send. */
    public record DeviceProgress(String id, String deviceState, long transferredBytes, long pendingBytes) {
    }

    public record ErrorView(String code, String message) {
    }

    /** A phase, when it began and how long it lasted (ms since the migration began; null while open). */
    public record PhaseView(String phase, long startMs, Long durationMs) {
    }

    /**
     * One pass over memory: its pages (zero ones among them), the bytes it put on the wire (pages and
     * device data), how long it took to its iteration barrier, and how fast the VM dirtied memory
     * meanwhile (pages newly dirtied per second between two reads of the dirty logs).
     */
    public record PassView(int iteration, long pages, long zeroPages, long bytes, long durationMs,
                           long dirtyRateBytesPerSecond) {
    }
}
