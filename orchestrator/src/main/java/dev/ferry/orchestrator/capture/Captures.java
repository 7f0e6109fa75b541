package dev.ferry.orchestrator.capture;

import com.fasterxml.jackson.core.JsonProcessingException;
import dev.ferry.orchestrator.Managed;
import dev.ferry.orchestrator.api.Json;
import dev.ferry.protocol.ProtocolVersion;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.capture.CaptureFormat;
import dev.ferry.protocol.capture.CaptureHeader;
import dev.ferry.protocol.capture.CaptureWriter;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The daemon's captured migration streams ({@code --capture-dir}): each captured migration's file,
 * {@code MIGRATION-SIDE.fcap} in the directory, opened as the migration starts (on the destination, once
 * the source's description asks for it) and closed as it ends. On stop the last files get a few seconds
 * to close.
 */
public final class Captures implements Managed {
    /** Where a capture's bytes go: a new file, or a test's sink. */
    @FunctionalInterface
    public interface Sink {
        /** The file system: a new file, never an existing one overwritten. */
        Sink FILES = file -> FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);

        WritableByteChannel create(Path file) throws IOException;
    }

    /** A capture file's name ends so. */
    public static final String SUFFIX = ".fcap";
    private static final Logger LOG = LoggerFactory.getLogger(Captures.class);
    /** How long stopping waits for the files still closing, in all. */
    private static final long STOP_WAIT_MILLIS = 5_000;

    private final Path dir;
    private final Sink sink;
    private final String version;
    private final long queueBytes;
    private final Set<Capture> closing = ConcurrentHashMap.newKeySet();

    /**
     * @param dir        where captures go, or {@code null}: then no migration may be captured
     * @param version    this daemon's version, written into each capture
     * @param queueBytes what each capture holds in memory at most, waiting for its file
     */
    public Captures(Path dir, Sink sink, String version, long queueBytes) {
        this.dir = dir;
        this.sink = sink;
        this.version = version;
        this.queueBytes = queueBytes;
    }

    /** A daemon without a capture directory. */
    public static Captures none() {
        return new Captures(null, Sink.FILES, "", 0);
    }

    /** Whether this daemon can capture: it has a capture directory. */
    public boolean enabled() {
        return dir != null;
    }

    /**
     * Opens a migration's capture. A file that cannot be created leaves the migration uncaptured, never
     * failed: the capture then says why.
     *
     * @param startNanos the migration's start, from which the capture's times count
     */
    public Capture open(String migration, CaptureFormat.Side side, SessionId session, String vm, boolean pageData, long startNanos) {
        if (dir == null) {
            throw new IllegalStateException("no capture directory");
        }
        Path file = dir.resolve(migration + "-" + side.label() + SUFFIX);
        Map<String, Object> metadata = new LinkedHashMap<>();
        metadata.put("migration", migration);
        metadata.put("vm", vm);
        metadata.put("ferryd", version);
        CaptureHeader header;
        try {
            header = new CaptureHeader(CaptureFormat.VERSION, pageData, ProtocolVersion.CURRENT, side, session,
                    System.currentTimeMillis(), Json.mapper().writeValueAsString(metadata));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        WritableByteChannel channel;
        try {
            channel = sink.create(file);
        } catch (IOException e) {
            LOG.warn("migration {}: cannot capture into {}: {}", migration, file, e.toString());
            return Capture.failed(file, pageData, "cannot create " + file + ": " + e);
        }
        CaptureWriter writer = CaptureWriter.start(channel, header, startNanos, queueBytes, "ferry-capture-" + migration);
        LOG.info("migration {}: capturing the {} side into {}{}", migration, side.label(), file, pageData ? " with page data" : "");
        Capture capture = new Capture(file, pageData, writer, null);
        closing.removeIf(Capture::isClosed);
        closing.add(capture);
        return capture;
    }

    @Override
    public void start() {
    }

    /** Gives the captures of migrations that just ended a few seconds to write their last records and close. */
    @Override
    public void stop() {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(STOP_WAIT_MILLIS);
        for (Capture capture : Set.copyOf(closing)) {
            try {
                long left = deadline - System.nanoTime();
                if (left <= 0 || !capture.awaitClosed(left, TimeUnit.NANOSECONDS)) {
                    LOG.warn("capture {} still open while stopping", capture.file());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
