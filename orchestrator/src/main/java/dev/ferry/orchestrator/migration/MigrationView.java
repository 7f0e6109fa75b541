package dev.ferry.orchestrator.migration;

import java.util.List;
import java.util.Map;

/**
 * The Migration resource of API.md, with the additions the daemon documents: when it ended, the pages
 * sent and their size, the estimated time left, the auto-converge throttle, each pass, per device the
 * bytes still pending, the phases with their times, and with {@code verify} how long this side took to
 * digest the frozen VM ({@code verifyMs}, part of the downtime) and what it hashed then ({@code verifyBytes}: only
 * what changed since its last refresh).
 */
public record MigrationView(String id, String vm, String role, String peer, String phase, Map<String, Object> policy,
                            String startedAt, String finishedAt, Long setupTimeMs, long totalTimeMs, Long downtimeMs,
                            Boolean downtimeLimitMet, List<DowntimeStep> downtimeSteps, Long expectedDowntimeMs, Long switchoverAckWaitMs, long iterations,
                            long transferredBytes, long remainingBytes, MemoryProgress memoryBytes, long deviceBytes,
                            long dirtyRateBytesPerSecond, long throughputBytesPerSecond, Long etaMs, int throttlePercent,
                            int deviceThrottlePercent, List<DeviceProgress> devices, List<PassView> passes, Boolean verified,
                            Double verifyMs, Long verifyBytes, ErrorView error, CaptureView capture, List<PhaseView> phases,
                            List<RecoveryView> recoveries) {

    /**
     * What the source did to a device to bring it back when the migration failed before its commit (F4), as QEMU
     * recovers a VFIO device: the recovery state written ({@code recovery_state}, {@code result} the state
     * reached), or a reset ({@code reset}, {@code result} why: the device was in ERROR, or the recovery state
     * failed). {@code state} is where the device was before.
     */
    public record RecoveryView(String device, String state, String action, String result) {
    }

    /**
     * Guest memory: its size; bytes of page data sent or received (normal pages only: a zero page is a
     * flag on the wire); zero and normal pages; the page size.
     */
    /** @param tornPages on the destination: pages that arrived not matching their CRC (changed while sent) and were awaited again */
    public record MemoryProgress(long total, long transferred, long zeroPages, long normalPages, int pageSize, long tornPages) {
    }

    /**
     * A device: its state now, its migration data sent or received, what it has ready to send, and its
     * part in the downtime once known (F6): the bytes of its stop-and-copy and what it had predicted
     * for them (W9), and how long it took to quiesce (the grace and stop-and-copy barriers) and to be
     * read on the source, to load (R3) and to resume (R4) on the destination, in milliseconds.
     */
    public record DeviceProgress(String id, String deviceState, long transferredBytes, long pendingBytes, Long stopCopyBytes,
                                 Long predictedStopCopyBytes, Double quiesceMs, Double saveMs, Double loadMs, Double resumeMs) {
    }

    /** A device's part in the downtime (F6); a field unknown on this side is null. */
    public record DeviceDowntime(Long stopCopyBytes, Long predictedStopCopyBytes, Double quiesceMs, Double saveMs, Double loadMs,
                                 Double resumeMs) {
        DeviceDowntime with(DeviceDowntime newer) {
            return new DeviceDowntime(or(newer.stopCopyBytes, stopCopyBytes), or(newer.predictedStopCopyBytes, predictedStopCopyBytes),
                    or(newer.quiesceMs, quiesceMs), or(newer.saveMs, saveMs), or(newer.loadMs, loadMs), or(newer.resumeMs, resumeMs));
        }

        private static <T> T or(T value, T fallback) {
            return value != null ? value : fallback;
        }
    }

    /** A step on the downtime's path (F6), in milliseconds; the steps add up to the downtime. */
    public record DowntimeStep(String step, double durationMs) {
    }

    /** Why a migration failed; {@code details} carries more for some codes (F8's device, field and reason), else null. */
    public record ErrorView(String code, String message, java.util.Map<String, Object> details) {
        /** {@code details} is never null: {@code {}} when there are none, as in the API's error shape. */
        public ErrorView {
            details = details == null ? java.util.Map.of() : details;
        }
    }

    /**
     * Where this side captured the session (the migration's {@code capture}): the file, whether with page
     * data, frames written and the file's bytes so far, frames dropped because the writer was behind (and
     * their bytes on the wire), whether the file is closed, and why the capture failed if it did.
     */
    public record CaptureView(String file, boolean pageData, long frames, long bytes, long dropped, long droppedBytes, boolean closed,
                              String error) {
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
