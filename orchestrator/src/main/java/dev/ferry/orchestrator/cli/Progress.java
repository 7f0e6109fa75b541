package dev.ferry.orchestrator.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Locale;

/** One-line renderings of a migration's progress, for terminals and logs. */
public final class Progress {
    private static final int BAR = 24;

    private Progress() {
    }

    /**
     * {@code vm1  precopy  pass 3 [#########...............]  37.5%  sent 512.0 MiB  left 853.3 MiB  1.2 GiB/s  eta 0.7 s  exp. downtime 12 ms}
     *
     * <p>The bar is the share of bytes sent of those sent and still to send: it moves during a pass,
     * never passes 100%, and may step back when the guest dirties memory faster than it is sent.
     */
    public static String line(JsonNode migration) {
        long sent = migration.path("transferredBytes").asLong();
        long left = migration.path("remainingBytes").asLong();
        String phase = migration.path("phase").asText();
        boolean finished = finished(migration);
        double fraction = phase.equals("completed") ? 1 : sent + left == 0 ? 0 : Math.min(1.0, (double) sent / (sent + left));
        int filled = (int) Math.round(fraction * BAR);
        String bar = "[" + "#".repeat(filled) + ".".repeat(BAR - filled) + "]";
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%-8s %-12s pass %-3d %s %5.1f%%  sent %s  left %s  %s/s", migration.path("vm").asText(),
                phase, migration.path("iterations").asLong(), bar, fraction * 100, bytes(sent), bytes(left),
                bytes(migration.path("throughputBytesPerSecond").asLong())));
        if (!finished && !migration.path("etaMs").isNull()) {
            sb.append(String.format(Locale.ROOT, "  eta %.1f s", migration.path("etaMs").asLong() / 1000.0));
        }
        if (!finished && migration.path("dirtyRateBytesPerSecond").asLong() > 0) {
            sb.append("  dirty ").append(bytes(migration.path("dirtyRateBytesPerSecond").asLong())).append("/s");
        }
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
