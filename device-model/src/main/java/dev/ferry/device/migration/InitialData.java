package dev.ferry.device.migration;

/**
 * Where a save session's current round of initial data ends (W4, W8), for the switchover acknowledgement
 * (F7): the destination acknowledges a device once it has processed its stream up to {@code endOffset}
 * ({@code Device.loadedBytes()}, W7).
 *
 * @param generation which round: 0 for the bulk state a pre-copy session starts with, one more for each
 *                   re-initialisation since (W8). A higher generation than one acknowledged withdraws the
 *                   acknowledgement until the new round is processed.
 * @param endOffset  the offset in the device's stream, from its first byte, at which this round's initial
 *                   data ends (always a record boundary). Final once {@code complete}; before that, the end
 *                   as it stands now (it may still grow if the device allocates memory the round has not
 *                   reached yet)
 * @param complete   whether the reader has read the stream up to {@code endOffset}: all of this round's
 *                   initial data has left the device
 */
public record InitialData(long generation, long endOffset, boolean complete) {
    /**
     * No initial data to wait for: outside a save session, and for a device without internal logging,
     * which streams nothing in pre-copy (W3).
     */
    public static final InitialData NONE = new InitialData(0, 0, true);

    public InitialData {
        if (generation < 0 || endOffset < 0) {
            throw new IllegalArgumentException("generation " + generation + " and endOffset " + endOffset + " must be >= 0");
        }
    }
}
