package dev.ferry.orchestrator.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Locale;

/** One-line renderings of a migration's progress, for terminals and logs. */
public final class Progress {
    private static final int BAR = 24;

    private Progress() {
    }

    /** {@code vm1  precopy      it 3 [#########.......]  512.0 MiB/1.0 GiB  1.2 GiB/s  exp. downtime 12 ms} */
    public static String line(JsonNode migration) {
        JsonNode memory = migration.path("memoryBytes");
        long total = memory.path("total").asLong();
        long done = memory.path("transferred").asLong();
        String phase = migration.path("phase").asText();
        boolean finished = phase.equals("completed") || phase.equals("failed") || phase.equals("cancelled");
        double fraction = total == 0 ? 0 : Math.min(1.0, (double) done / total);
        if (phase.equals("completed")) {
            fraction = 1;
        }
        int filled = (int) Math.round(fraction * BAR);
        String bar = "[" + "#".repeat(filled) + ".".repeat(BAR - filled) + "]";
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%-8s %-12s it %-3d %s %5.1f%%  %s/%s  %s/s", migration.path("vm").asText(),
                phase, migration.path("iterations").asLong(), bar, fraction * 100, bytes(done), bytes(total),
                bytes(migration.path("throughputBytesPerSecond").asLong())));
        if (!finished && !migration.path("expectedDowntimeMs").isNull()) {
            sb.append("  exp. downtime ").append(migration.path("expectedDowntimeMs").asLong()).append(" ms");
        }
        if (!migration.path("downtimeMs").isNull()) {
            sb.append("  downtime ").append(migration.path("downtimeMs").asLong()).append(" ms");
        }
        if (!migration.path("error").isNull()) {
            sb.append("  ").append(migration.path("error").path("code").asText()).append(": ")
                    .append(migration.path("error").path("message").asText());
        }
        return sb.toString();
    }

    public static String bytes(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double value = bytes;
        int unit = -1;
        while (value >= 1024 && unit < units.length - 1) {
            value /= 1024;
            unit++;
        }
        return String.format(Locale.ROOT, "%.1f %s", value, units[unit]);
    }

    public static boolean finished(JsonNode migration) {
        String phase = migration.path("phase").asText();
        return phase.equals("completed") || phase.equals("failed") || phase.equals("cancelled");
    }
}
