package dev.ferry.orchestrator.migration;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How long the calling thread has waited, runnable, for a core: the second field of Linux's
 * {@code /proc/thread-self/schedstat}. What a thread spends there is the host's load, not the work it
 * timed; 0 where the kernel does not say.
 */
final class RunQueueWait {
    private static final Path SCHEDSTAT = Path.of("/proc/thread-self/schedstat");

    private RunQueueWait() {
    }

    /** Nanoseconds this thread has waited for a core since it started, or 0 where that is not known. */
    static long nanos() {
        try {
            return parse(Files.readString(SCHEDSTAT));
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            return 0;
        }
    }

    /** {@code "<on cpu ns> <waiting ns> <timeslices>"}; 0 for anything else. */
    static long parse(String schedstat) {
        String[] fields = schedstat.trim().split("\\s+");
        if (fields.length < 2) {
            return 0;
        }
        try {
            return Math.max(0, Long.parseLong(fields[1]));
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
