package dev.ferry.orchestrator.capture;

import dev.ferry.protocol.capture.CaptureTap;
import dev.ferry.protocol.capture.CaptureWriter;
import dev.ferry.protocol.net.FrameChannel;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * One migration's capture on this daemon: its file, its channels tapped as they open, and where it
 * stands (what the migration resource shows). A capture whose file could not be created captures
 * nothing and says why.
 */
public final class Capture {
    /** Where a capture stands: frames written and their bytes in the file, frames dropped, closed or not, and why it failed. */
    public record Stats(long frames, long bytes, long dropped, long droppedBytes, boolean closed, String error) {
    }

    private final Path file;
    private final boolean pageData;
    private final CaptureWriter writer;
    private final String failure;

    Capture(Path file, boolean pageData, CaptureWriter writer, String failure) {
        this.file = file;
        this.pageData = pageData;
        this.writer = writer;
        this.failure = failure;
    }

    static Capture failed(Path file, boolean pageData, String failure) {
        return new Capture(file, pageData, null, failure);
    }

    public Path file() {
        return file;
    }

    /** Whether PAGES frames are captured whole, page data included. */
    public boolean pageData() {
        return pageData;
    }

    /** Captures a channel of the session from now on, both ways. */
    public void tap(FrameChannel channel) {
        if (writer != null) {
            writer.tap(channel);
        }
    }

    /** Captures from here on into this capture what a pending tap kept (the destination's control channel). */
    public void attach(CaptureTap pending) {
        if (writer != null) {
            pending.attach(writer);
        } else {
            pending.decline();
        }
    }

    /** The migration ended, as {@code outcome} says: the file closes once its channels have. Returns at once. */
    public void finish(String outcome) {
        if (writer != null) {
            writer.finish(outcome);
        }
    }

    boolean isClosed() {
        return writer == null || writer.stats().closed();
    }

    boolean awaitClosed(long timeout, TimeUnit unit) throws InterruptedException {
        return writer == null || writer.awaitClosed(timeout, unit);
    }

    public Stats stats() {
        if (writer == null) {
            return new Stats(0, 0, 0, 0, true, failure);
        }
        CaptureWriter.Stats stats = writer.stats();
        return new Stats(stats.frames(), stats.fileBytes(), stats.droppedFrames(), stats.droppedBytes(), stats.closed(), stats.error());
    }
}
