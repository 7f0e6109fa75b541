package dev.ferry.orchestrator.migration;

import java.util.List;
import java.util.Map;

/**
 * The Migration resource of API.md, plus its phases with their times and, with {@code verify}, how long
 * this side took to digest the frozen VM ({@code verifyMs}, part of the downtime).
 */
public record MigrationView(String id, String vm, String role, String peer, String phase, Map<String, Object> policy,
                            String startedAt, Long setupTimeMs, long totalTimeMs, Long downtimeMs, Long expectedDowntimeMs,
                            long iterations, long transferredBytes, long remainingBytes, MemoryProgress memoryBytes,
                            long deviceBytes, long dirtyRateBytesPerSecond, long throughputBytesPerSecond,
                            List<DeviceProgress> devices, Boolean verified, Long verifyMs, ErrorView error,
                            List<PhaseView> phases) {

    /** Guest memory: its size, bytes of pages sent or received, and how many of those pages were zero. */
    public record MemoryProgress(long total, long transferred, long zeroPages) {
    }

    public record DeviceProgress(String id, String deviceState, long transferredBytes) {
    }

    public record ErrorView(String code, String message) {
    }

    /** A phase, when it began and how long it lasted (ms since the migration began; null while open). */
    public record PhaseView(String phase, long startMs, Long durationMs) {
    }
}
