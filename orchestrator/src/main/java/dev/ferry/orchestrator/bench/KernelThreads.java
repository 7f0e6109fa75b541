package dev.ferry.orchestrator.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The CPU that the kernel's memory-management threads took beside the benchmark, which no figure of
 * the daemons shows: DAMON's {@code kdamond} (on a host that runs it, it samples physical memory and
 * pages out regions that stayed cold), {@code kswapd} and {@code kcompactd}. On a machine of two cores
 * what they take is taken from the daemons, so a run that prints it says how quiet its machine was.
 * Read from {@code /proc}; where there is none, every sample is empty.
 */
record KernelThreads(Map<String, Long> ticksByName) {
    private static final List<String> WATCHED = List.of("kdamond", "kswapd", "kcompactd");
    /** Clock ticks per second of {@code /proc/<pid>/stat}: USER_HZ, 100 on Linux. */
    private static final long TICKS_PER_SECOND = 100;

    /** Each watched thread's user and system time now, by name. */
    static KernelThreads sample() {
        Map<String, Long> ticks = new TreeMap<>();
        try (Stream<Path> processes = Files.list(Path.of("/proc"))) {
            for (Path process : processes.filter(p -> p.getFileName().toString().chars().allMatch(Character::isDigit)).toList()) {
                try {
                    Entry thread = parse(Files.readString(process.resolve("stat")));
                    if (thread != null && WATCHED.stream().anyMatch(thread.name()::startsWith)) {
                        ticks.merge(thread.name(), thread.ticks(), Long::sum);
                    }
                } catch (IOException gone) {
                    // It ended between the listing and the read.
                }
            }
        } catch (IOException | UncheckedIOException noProc) {
            return new KernelThreads(Map.of());
        }
        return new KernelThreads(ticks);
    }

    record Entry(String name, long ticks) {
    }

    /** A {@code /proc/<pid>/stat} line: the name in parentheses (it may hold spaces and parentheses), utime and stime the 14th and 15th fields. */
    static Entry parse(String stat) {
        int open = stat.indexOf('(');
        int close = stat.lastIndexOf(')');
        if (open < 0 || close < open) {
            return null;
        }
        String[] rest = stat.substring(close + 1).trim().split("\\s+");
        // rest[0] is the 3rd field (state): utime is rest[11], stime rest[12].
        if (rest.length < 13) {
            return null;
        }
        try {
            return new Entry(stat.substring(open + 1, close), Long.parseLong(rest[11]) + Long.parseLong(rest[12]));
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /** What each thread took from this sample to {@code later}, in milliseconds; threads that took nothing are left out. */
    Map<String, Long> millisUntil(KernelThreads later) {
        Map<String, Long> millis = new TreeMap<>();
        later.ticksByName.forEach((name, ticks) -> {
            long spent = ticks - ticksByName.getOrDefault(name, 0L);
            if (spent > 0) {
                millis.put(name, spent * 1000 / TICKS_PER_SECOND);
            }
        });
        return millis;
    }

    /** {@code kdamond.0 1.20 s (18% of a core)}, for each thread, over {@code nanos}; empty when none took anything. */
    static String describe(Map<String, Long> millis, long nanos) {
        StringBuilder text = new StringBuilder();
        millis.forEach((name, spent) -> {
            if (!text.isEmpty()) {
                text.append(", ");
            }
            text.append(String.format(Locale.ROOT, "%s %.2f s (%.0f%% of a core)", name, spent / 1000.0, spent * 1e8 / Math.max(1, nanos)));
        });
        return text.toString();
    }
}
