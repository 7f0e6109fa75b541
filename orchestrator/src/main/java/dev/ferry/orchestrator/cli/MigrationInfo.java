package dev.ferry.orchestrator.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code ctl migration info}: one migration as {@code virsh domjobinfo} shows a job, a label and a
 * value per line, from the Migration resource alone. "Data" is everything the migration moves (pages
 * and device data); "Data total" is what was sent plus what is left, the same estimate the progress
 * bar draws, so it grows when the guest dirties memory faster than it is sent.
 */
final class MigrationInfo {
    private MigrationInfo() {
    }

    static String render(JsonNode m) {
        Lines lines = new Lines();
        boolean finished = Progress.finished(m);
        JsonNode policy = m.path("policy");
        lines.add("Migration", m.path("id").asText());
        lines.add("VM", m.path("vm").asText());
        lines.add("Role", m.path("role").asText() + (m.path("role").asText().equals("source") ? ", to " : ", from ")
                + m.path("peer").asText());
        lines.add("Phase", m.path("phase").asText());
        lines.add("Started", m.path("startedAt").asText());
        lines.add("Finished", text(m.path("finishedAt")));
        lines.add("Time elapsed", m.path("totalTimeMs").asLong() + " ms");
        lines.add("Setup time", millis(m.path("setupTimeMs")));
        if (!finished) {
            lines.add("Time remaining", m.path("etaMs").isNull() ? "-" : m.path("etaMs").asLong() + " ms (estimated)");
        }
        long processed = m.path("transferredBytes").asLong();
        long remaining = m.path("remainingBytes").asLong();
        lines.add("Data processed", bytes(processed));
        lines.add("Data remaining", bytes(remaining));
        lines.add("Data total", bytes(processed + remaining));
        JsonNode memory = m.path("memoryBytes");
        lines.add("Memory processed", bytes(memory.path("transferred").asLong()));
        lines.add("Memory total", bytes(memory.path("total").asLong()));
        lines.add("Memory pages", String.format(Locale.ROOT, "%d normal, %d zero, page size %d bytes",
                memory.path("normalPages").asLong(), memory.path("zeroPages").asLong(), memory.path("pageSize").asLong()));
        lines.add("Device data", bytes(m.path("deviceBytes").asLong()));
        lines.add("Throughput", bytes(m.path("throughputBytesPerSecond").asLong()) + "/s"
                + (finished ? " (whole migration)" : " (last 2 s)"));
        lines.add("Dirty rate", bytes(m.path("dirtyRateBytesPerSecond").asLong()) + "/s");
        lines.add("Iterations", Long.toString(m.path("iterations").asLong()));
        lines.add("Downtime", millis(m.path("downtimeMs")));
        if (!finished || m.path("downtimeMs").isNull()) {
            lines.add("Expected downtime", millis(m.path("expectedDowntimeMs")));
        }
        if (policy.has("downtimeLimitMs")) {
            lines.add("Downtime limit", policy.path("downtimeLimitMs").asLong() + " ms");
        }
        if (policy.has("maxBandwidthBytesPerSecond")) {
            long limit = policy.path("maxBandwidthBytesPerSecond").asLong();
            lines.add("Bandwidth limit", limit == 0 ? "unlimited" : bytes(limit) + "/s");
        }
        if (policy.has("compression") && !policy.path("compression").asText().equals("none")) {
            long pages = memory.path("transferred").asLong();
            // Device data goes uncompressed: the ratio is of the page bytes against what carried them
            // (frames and control included), the device data left out of both.
            long pageWire = processed - m.path("deviceBytes").asLong();
            lines.add("Compression", policy.path("compression").asText() + (pages > 0 && pageWire > 0
                    ? String.format(Locale.ROOT, ", %s on the wire for %s of pages (%.2fx); device data is not compressed",
                            bytes(pageWire), bytes(pages), (double) pages / pageWire) : ""));
        }
        if (policy.path("dryRun").asBoolean()) {
            lines.add("Dry run", "yes: the handshake and the compatibility check only, nothing moved");
        }
        lines.add("Auto-converge throttle", m.path("throttlePercent").asInt() + "% of the vCPUs"
                + (m.has("deviceThrottlePercent") ? ", " + m.path("deviceThrottlePercent").asInt() + "% of the devices' own work" : ""));
        if (m.hasNonNull("switchoverAckWaitMs")) {
            lines.add("Switchover ack wait", m.path("switchoverAckWaitMs").asLong() + " ms");
        }
        if (!m.path("verified").isNull()) {
            lines.add("Verified", m.path("verified").asBoolean() + (m.path("verifyMs").isNull() ? ""
                    : " (digest " + m.path("verifyMs").asLong() + " ms)"));
        }
        JsonNode capture = m.path("capture");
        if (capture.isObject()) {
            lines.add("Capture", capture.path("file").asText() + ": " + capture.path("frames").asLong() + " frames, "
                    + bytes(capture.path("bytes").asLong()) + (capture.path("dropped").asLong() > 0 ? ", " + capture.path("dropped").asLong()
                    + " frames dropped" : "") + (capture.path("closed").asBoolean() ? ", closed" : ", open")
                    + (capture.path("error").isNull() ? "" : ", failed: " + capture.path("error").asText()));
        }
        if (!m.path("error").isNull()) {
            lines.add("Error", m.path("error").path("code").asText() + ": " + m.path("error").path("message").asText());
        }
        StringBuilder out = new StringBuilder(lines.toString());
        List<String> phases = new ArrayList<>();
        for (JsonNode phase : m.path("phases")) {
            if (Progress.finished(phase)) {
                continue;
            }
            phases.add(phase.path("phase").asText() + " " + (phase.path("durationMs").isNull() ? "(now)"
                    : phase.path("durationMs").asLong() + " ms"));
        }
        if (!phases.isEmpty()) {
            out.append("Phases:\n  ").append(String.join(", ", phases)).append('\n');
        }
        if (m.path("downtimeSteps").size() > 0) {
            List<String> steps = new ArrayList<>();
            for (JsonNode step : m.path("downtimeSteps")) {
                steps.add(String.format(Locale.ROOT, "%s %.2f ms", step.path("step").asText(), step.path("durationMs").asDouble()));
            }
            out.append("Downtime steps:\n  ").append(String.join(", ", steps)).append('\n');
        }
        if (m.path("passes").size() > 0) {
            out.append("Passes:\n");
            for (JsonNode pass : m.path("passes")) {
                out.append(String.format(Locale.ROOT, "  %3d  %9d pages (%d zero)  %10s  %6d ms  dirty %s/s%n",
                        pass.path("iteration").asInt(), pass.path("pages").asLong(), pass.path("zeroPages").asLong(),
                        bytes(pass.path("bytes").asLong()), pass.path("durationMs").asLong(),
                        bytes(pass.path("dirtyRateBytesPerSecond").asLong())));
            }
        }
        if (m.path("devices").size() > 0) {
            out.append("Devices:\n");
            for (JsonNode device : m.path("devices")) {
                out.append(String.format(Locale.ROOT, "  %-12s %-22s sent %10s  pending %10s", device.path("id").asText(),
                        device.path("deviceState").asText(), bytes(device.path("transferredBytes").asLong()),
                        bytes(device.path("pendingBytes").asLong())));
                if (device.hasNonNull("stopCopyBytes")) {
                    out.append("  stop-and-copy ").append(bytes(device.path("stopCopyBytes").asLong()));
                    if (device.hasNonNull("predictedStopCopyBytes")) {
                        out.append(" (predicted ").append(bytes(device.path("predictedStopCopyBytes").asLong())).append(')');
                    }
                }
                out.append('\n');
            }
        }
        return out.toString();
    }

    private static String bytes(long value) {
        return Progress.bytes(value);
    }

    private static String millis(JsonNode value) {
        return value.isNull() || value.isMissingNode() ? "-" : value.asLong() + " ms";
    }

    private static String text(JsonNode value) {
        return value.isNull() || value.isMissingNode() ? "-" : value.asText();
    }

    /** Labels padded to one column, as domjobinfo prints them. */
    private static final class Lines {
        private final StringBuilder text = new StringBuilder();

        void add(String label, String value) {
            text.append(String.format(Locale.ROOT, "%-24s%s%n", label + ":", value));
        }

        @Override
        public String toString() {
            return text.toString();
        }
    }
}
