package dev.ferry.orchestrator.capture;

import java.util.List;
import java.util.Map;

/**
 * What {@code ferryd inspect} found in a capture ({@code --output json} prints it as it is): the
 * capture's header, the session's milestones, every channel with its frames and checks, each pass over
 * memory, each device's data, the totals, and every check that failed.
 *
 * @param ok whether the capture decoded and every check held
 */
public record InspectionReport(String file, Capture capture, Vm vm, List<Milestone> milestones, List<Channel> channels,
                               List<Iteration> iterations, List<Device> devices, Totals totals, List<Failure> failures,
                               List<String> notes, boolean ok) {

    /**
     * The capture itself: format version, the side that wrote it, the migration and VM, the session,
     * the protocol version, the daemon's version, when it began, whether with page data, and how it ended
     * (its END record's outcome; null when it has none).
     */
    public record Capture(int formatVersion, String side, String migration, String vm, String session, int protocolVersion,
                          String ferryd, String startedAt, boolean pageData, String outcome, double durationMs) {
    }

    /** The VM as the source described it: memory, page size, data channels, and the devices in their data's order. */
    public record Vm(long memoryBytes, int pageSize, int dataChannels, List<DeviceRef> devices) {
    }

    /** A device of the description: its index in DEVICE_DATA frames, its id and kind, its data format version. */
    public record DeviceRef(int index, String id, String kind, int formatVersion) {
    }

    /** A frame of the session's course (description, answer, prepare, commit, confirmation, abort) and when it passed. */
    public record Milestone(double atMs, String channel, String from, String frame) {
    }

    /**
     * A channel: what went each way ({@code sent} and {@code received} by the side that captured), frames
     * whose CRC32C was checked, PAGES frames among them captured without their page data (whose pages'
     * own CRCs could not be checked), frames the capture dropped, whether the session rules could be
     * checked, and whether every check held.
     */
    public record Channel(String channel, Direction sent, Direction received, long crcChecked, long pageDataLeftOut, long dropped,
                          String rules, boolean ok) {
    }

    /** One direction of a channel: frames, their bytes on the wire, the sequence numbers seen, frames by type, first and last time. */
    public record Direction(long frames, long wireBytes, Long firstSequence, Long lastSequence, Map<String, Long> types,
                            Double firstMs, Double lastMs) {
    }

    /**
     * A pass over memory: the source's phase when it ended, its pages (zero ones among them; torn ones,
     * whose data did not match their CRC, when the capture has page data, else null) and page data, the device data sent in it, its pages per data channel, the ITERATION_END's count (null until
     * seen), whether the destination acknowledged it (ITERATION_DONE), and when its first and last frame
     * passed.
     */
    public record Iteration(int iteration, String phase, long pages, long zeroPages, Long tornPages, long pageDataBytes, long deviceBytes,
                            Map<String, Long> channelPages, Long iterationEndPages, boolean done, Double startMs, Double endMs) {
    }

    /**
     * A device's migration data: its chunks and bytes, the total DEVICE_END gave, each round of initial
     * data (DEVICE_INITIAL), and its stream as decoded.
     */
    public record Device(int index, String id, String kind, long chunks, long bytes, Long endTotal, List<InitialRound> initialData,
                         Stream stream) {
    }

    /** A round of a device's initial data: its generation, and where in the stream it ends. */
    public record InitialRound(long generation, long endOffset) {
    }

    /**
     * A device's stream, decoded: its header (format version, kind, configuration, device memory, page
     * size), its records by type with the offset of each type's first, the STATE record's offset and
     * size, the end record's offset, and {@code status}: {@code complete}, or what is wrong or missing.
     */
    public record Stream(Integer formatVersion, String kind, String config, Long memoryBytes, Integer pageSize,
                         Map<String, Long> records, Map<String, Long> firstOffsets, Long stateOffset, Integer stateBytes,
                         Long endOffset, String status) {
    }

    /**
     * Everything: frames and their bytes on the wire, pages (zero ones among them) and their data, device
     * data, the capture's length, and frames the capture dropped.
     */
    public record Totals(long frames, long wireBytes, long pages, long zeroPages, long pageDataBytes, long deviceBytes,
                         double durationMs, long droppedFrames, long droppedBytes) {
    }

    /** A check that failed: its name, where (a frame's place, a device's stream offset, an iteration), and why. */
    public record Failure(String check, String where, String message) {
    }
}
