package dev.ferry.device;

import dev.ferry.device.migration.InitialData;
import dev.ferry.device.migration.LoadStream;
import dev.ferry.device.migration.SaveStream;
import java.nio.ByteBuffer;

/**
 * The data window (SPEC §2): at most one session at a time, a save session ({@link SaveStream}, W1–W4, W8,
 * W9) while SAVING and a resume session ({@link LoadStream}, W5, W7) while RESUMING. The state machine opens
 * and closes the sessions in its priority steps; the device checks that the window is used in its session
 * (W6). Every method is called with the device's lock held.
 */
final class DataWindow {
    private final StateImage image;
    private final boolean preCopy;
    private SaveStream save;
    private LoadStream load;
    private long lastLoaded;

    DataWindow(StateImage image, boolean preCopy) {
        this.image = image;
        this.preCopy = preCopy;
    }

    /** Step 7: pre-copy starts a save session with internal dirty logging (W4). */
    void startPreCopy() {
        save = new SaveStream(image, preCopy);
        save.startPreCopy();
    }

    /** Step 3: from here the rest of the stream is fixed (W2, W4); a save without pre-copy starts here. */
    void enterStopCopy() {
        if (save == null) {
            save = new SaveStream(image, preCopy);
        }
        save.enterStopCopy();
    }

    /** Step 4: a resume session (D7); whatever was open is discarded. */
    void openResume() {
        discard();
        load = new LoadStream(image);
    }

    /** Step 5 (D8): what only the end can show. Returns {@code null}, or why the load failed. */
    String finishResume() {
        String problem = load.finish();
        lastLoaded = load.loadedBytes();
        load = null;
        return problem;
    }

    /** D9, D5, ERROR: the window's sessions end and what they held is gone. */
    void discard() {
        save = null;
        if (load != null) {
            lastLoaded = load.loadedBytes();
        }
        load = null;
        image.memoryLog().stop();
        image.memoryLog().clear();
    }

    /** D5: nothing loaded either. */
    void reset() {
        discard();
        lastLoaded = 0;
    }

    boolean saveOpen() {
        return save != null;
    }

    boolean resumeOpen() {
        return load != null;
    }

    /** W8: a re-initialisation; only a pre-copy session cares. */
    void bulkStateChanged() {
        if (save != null) {
            save.reinit();
        }
    }

    /** W1, W2: with a save session open. */
    int read(ByteBuffer dst) {
        return save.read(dst);
    }

    /** W5, W7: with a resume session open. Returns {@code null}, or the stream's first problem. */
    String write(ByteBuffer src) {
        return load.write(src);
    }

    /** W7. */
    long loadedBytes() {
        return load != null ? load.loadedBytes() : lastLoaded;
    }

    long pendingBytes() {
        return save.pendingBytes();
    }

    long initialBytes() {
        return save.initialBytes();
    }

    long dirtyBytes() {
        return save.dirtyBytes();
    }

    InitialData initialData() {
        return save.initialData();
    }

    boolean finished() {
        return save.finished();
    }

    /** W9: with a session, what it would still stream; without, the whole stream. */
    long stopCopyBytes(boolean saving) {
        long stateBytes = image.stateBytes();
        return saving ? save.stopCopyBytes(stateBytes) : SaveStream.fullStreamBytes(image, stateBytes);
    }
}
