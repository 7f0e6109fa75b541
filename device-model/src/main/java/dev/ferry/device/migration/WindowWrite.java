package dev.ferry.device.migration;

/**
 * The outcome of one write of the data window while RESUMING. The device processes the data as it
 * arrives (W7): every record the write completes is checked and applied before the write returns, and a
 * record the write only began waits for the rest of it.
 */
public sealed interface WindowWrite {

    /**
     * Bytes of the device's stream processed so far, counted from its first byte: the complete records
     * checked and applied (W7). Always at a record boundary, so it can be compared with an offset the
     * source reports, such as the end of the initial data ({@code Device.initialData()}, F7).
     */
    long loadedBytes();

    default boolean accepted() {
        return this instanceof Accepted;
    }

    /** The whole chunk was taken; what it completed is processed. */
    record Accepted(long loadedBytes) implements WindowWrite {
    }

    /**
     * The data failed its checks (wrong kind, version or configuration, a bad record, a checksum or count
     * mismatch, data after the end): the write failed and the device went to ERROR, as leaving RESUMING
     * would have made it, only earlier (D8, W7). Nothing after the failing record was applied; the rest
     * of the chunk was discarded, and the window takes no more writes (W6) until a reset (D5).
     */
    record Failed(long loadedBytes, TransitionResult.Failed failure) implements WindowWrite {
        /** A short human sentence for logs and API errors. */
        public String describe() {
            return failure.describe();
        }
    }
}
