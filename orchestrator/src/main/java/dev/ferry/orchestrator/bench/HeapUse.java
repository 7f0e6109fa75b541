package dev.ferry.orchestrator.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The daemons' heap as their GC logs ({@code -Xlog:gc}) tell it: the most any collection found in use
 * as it began (the peak, garbage included) and the most one left behind (what the daemon really holds).
 * Exact, and free for the daemons. Sampling their metrics instead cost each a scrape of about 5 ms of
 * CPU, ten times a second, inside the windows the other benchmarks time.
 */
record HeapUse(long peakBytes, long liveBytes) {
    /** {@code 33M->11M(47M)}: in use before the collection, after it, and the heap's committed size. */
    private static final Pattern COLLECTION = Pattern.compile("(\\d+)([KMG])->(\\d+)([KMG])\\(\\d+[KMG]\\)");

    static final HeapUse NONE = new HeapUse(0, 0);

    /** What every {@code gc-*.log} in {@code dir} says, together. */
    static HeapUse ofLogs(Path dir) throws IOException {
        HeapUse all = NONE;
        try (Stream<Path> logs = Files.list(dir)) {
            for (Path log : logs.filter(p -> p.getFileName().toString().matches("gc-.*\\.log")).sorted().toList()) {
                all = all.max(ofLines(Files.readAllLines(log)));
            }
        }
        return all;
    }

    static HeapUse ofLines(List<String> lines) {
        long peak = 0;
        long live = 0;
        for (String line : lines) {
            Matcher m = COLLECTION.matcher(line);
            if (m.find()) {
                peak = Math.max(peak, bytes(m.group(1), m.group(2)));
                live = Math.max(live, bytes(m.group(3), m.group(4)));
            }
        }
        return new HeapUse(peak, live);
    }

    /** The larger of each figure; a sample of the heap in use counts as a peak. */
    HeapUse max(HeapUse other) {
        return new HeapUse(Math.max(peakBytes, other.peakBytes), Math.max(liveBytes, other.liveBytes));
    }

    private static long bytes(String number, String unit) {
        int shift = switch (unit) {
            case "K" -> 10;
            case "M" -> 20;
            default -> 30;
        };
        return Long.parseLong(number) << shift;
    }
}
