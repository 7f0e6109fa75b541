package dev.ferry.device.migration;

import dev.ferry.device.memory.DirtyBitmap;
import dev.ferry.device.memory.PageStore;

/** What the data window reads from, and loads into, a device. */
public interface DeviceImage {

    /** The device kind, e.g. {@code gpu}. */
    String kind();

    /**
     * The version of the kind's data format that the header carries and the loader requires (D8): the kind's
     * {@code DeviceKindProvider.formatVersion()}.
     */
    int formatVersion();

    /** The canonical configuration; a stream loads only into a device whose configuration is equal. */
    byte[] configBytes();

    /** The device's internal memory. */
    PageStore memory();

    /** The internal dirty log over {@link #memory()}, on during pre-copy. */
    DirtyBitmap memoryLog();

    /** Registers and queued work, taken while the device is frozen. */
    byte[] captureState();

    /** Validates and applies what {@link #captureState()} produced. */
    void loadState(byte[] state) throws StreamFormatException;
}
