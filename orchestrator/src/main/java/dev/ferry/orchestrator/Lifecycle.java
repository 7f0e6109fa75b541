package dev.ferry.orchestrator;

import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Starts the daemon's parts in order and stops them in reverse, once, whatever failed in between. */
public final class Lifecycle {
    private static final Logger LOG = LoggerFactory.getLogger(Lifecycle.class);

    private final List<Managed> parts;
    private final List<Managed> started = new ArrayList<>();
    private boolean stopped;

    public Lifecycle(List<Managed> parts) {
        this.parts = List.copyOf(parts);
    }

    /** Starts every part; if one fails, stops those already started and rethrows. */
    public synchronized void start() throws Exception {
        for (Managed part : parts) {
            try {
                part.start();
                started.add(part);
            } catch (Exception e) {
                stop();
                throw e;
            }
        }
    }

    public synchronized void stop() {
        if (stopped) {
            return;
        }
        stopped = true;
        for (int i = started.size() - 1; i >= 0; i--) {
            Managed part = started.get(i);
            try {
                part.stop();
            } catch (RuntimeException | LinkageError e) {
                // The parts after it still stop: a daemon asked to end must end. (A LinkageError: a class first
                // needed now could not be loaded, as when the jar was replaced under the running daemon.)
                LOG.error("stopping {} failed", part.getClass().getSimpleName(), e);
            }
        }
    }
}
