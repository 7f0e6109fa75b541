package dev.ferry.orchestrator.capture;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.device.migration.StreamFormat;
import dev.ferry.device.migration.StreamReader;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameType;
import dev.ferry.protocol.PhaseCode;
import dev.ferry.protocol.capture.CaptureFormat;
import dev.ferry.protocol.capture.CaptureFormatException;
import dev.ferry.protocol.capture.CaptureHeader;
import dev.ferry.protocol.capture.CaptureReader;
import dev.ferry.protocol.capture.CaptureRecord;
import dev.ferry.protocol.capture.FrameChecks;
import io.netty.buffer.ByteBuf;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32C;

/**
 * Decodes a captured migration stream ({@code ferryd inspect}): the protocol's checks of every frame
 * ({@link FrameChecks}: CRC32C, sequence, structure, the session rules of both ends), and on top of the
 * frames what they carried: the VM as described, each pass over memory with its pages per channel
 * against the source's ITERATION_END, and each device's data put back in order by its offsets and
 * decoded ({@link StreamReader}: its header, records and end-record checks) against DEVICE_END.
 *
 * <p>It reads the capture once, holding per frame only a small fingerprint (for {@code --diff}), and a
 * device's chunks only while they wait for the ones before them.
 */
public final class Inspection {
    /** A report, and the fingerprints {@link CaptureDiff} compares. */
    public record Result(InspectionReport report, Fingerprints fingerprints) {
    }

    /**
     * What two captures are compared by: every frame of each channel by who sent it (keepalives left out,
     * their timing is no one's choice), each device's records, and each iteration's set of pages.
     */
    public record Fingerprints(Map<String, List<FrameMark>> frames, Map<String, List<RecordMark>> devices, Map<Integer, Long> pageSets) {
    }

    /**
     * A frame in short: its number among its channel's frames from the same sender, sequence, type, bytes on
     * the wire, a digest of its type, length and captured payload (not its sequence, which keepalives
     * shift), for PAGES a digest of its page indices alone, its CRC field, what it says, and when it passed.
     */
    public record FrameMark(long number, long sequence, int type, long wireBytes, int digest, int pageIndices, int crc, boolean whole,
                            String frame, double atMs) {
    }

    /** A device stream's record in short: where it begins, its type, its payload's length and CRC32C. */
    public record RecordMark(long offset, String type, int length, int crc) {
    }

    private static final ObjectMapper LENIENT = new ObjectMapper();

    private final Path file;
    private final List<InspectionReport.Failure> failures = new ArrayList<>();
    private final List<String> notes = new ArrayList<>();
    private final List<InspectionReport.Milestone> milestones = new ArrayList<>();
    private final Map<CaptureFormat.Channel, ChannelAcc> channels = new TreeMap<>();
    private final Map<Integer, IterationAcc> iterations = new TreeMap<>();
    private final Map<CaptureFormat.Channel, Integer> channelIteration = new TreeMap<>();
    private final Map<Integer, DeviceAcc> devices = new TreeMap<>();
    private final Map<String, List<FrameMark>> frameMarks = new TreeMap<>();
    private final List<InspectionReport.DeviceRef> deviceRefs = new ArrayList<>();
    private final java.util.Set<String> phasesSeen = new java.util.HashSet<>();
    private CaptureHeader header;
    private CaptureFormat.Side side;
    private FrameChecks checks;
    private CaptureRecord.End end;
    private InspectionReport.Vm vm;
    private String phase = PhaseCode.SETUP.label();
    private long lastNanos;
    private long frames;
    private long wireBytes;
    private long droppedFrames;
    private long droppedBytes;
    /** Frames that failed to decode: what they carried is missing, as a dropped frame's is. */
    private long undecoded;

    private Inspection(Path file) {
        this.file = file;
    }

    /** Inspects a capture. A file that cannot be read is an {@link IOException}; one that is not a capture, a failed check. */
    public static Result inspect(Path file) throws IOException {
        return new Inspection(file).run();
    }

    private Result run() throws IOException {
        try (CaptureReader reader = CaptureReader.open(file)) {
            header = reader.header();
            side = header.side();
            checks = new FrameChecks(side);
            for (CaptureRecord record = reader.next(); record != null; record = reader.next()) {
                lastNanos = Math.max(lastNanos, record.nanos());
                if (record instanceof CaptureRecord.FrameRecord frame) {
                    frame(frame);
                } else if (record instanceof CaptureRecord.Gap gap) {
                    gap(gap);
                } else {
                    end = (CaptureRecord.End) record;
                }
            }
            if (end == null) {
                failures.add(new InspectionReport.Failure("capture", "the end of the file", "no END record: the capture was not closed "
                        + "(the daemon stopped before the migration ended, or the file was cut)"));
            }
        } catch (CaptureFormatException e) {
            failures.add(new InspectionReport.Failure("capture", "file offset " + e.offset(), e.getMessage()));
        }
        return new Result(report(), fingerprints());
    }

    // ---- frames --------------------------------------------------------------------------------

    private void frame(CaptureRecord.FrameRecord record) {
        FrameChecks.Checked checked = checks.check(record);
        try {
            for (FrameChecks.Failure failure : checked.failures()) {
                failures.add(new InspectionReport.Failure(failure.check(), where(record, failure.number()), failure.message()));
            }
            boolean fromSource = record.direction().fromSource(side);
            ChannelAcc channel = channel(record.channel());
            channel.direction(record.direction()).add(record, checked.frame());
            if (checked.frame() != null) {
                channel.crcChecked++;
                if (record.pageDataLeftOut()) {
                    channel.pageDataLeftOut++;
                }
            }
            frames++;
            wireBytes += record.wireBytes();
            Frame frame = checked.frame();
            mark(record, checked.number(), frame, fromSource);
            if (frame != null) {
                content(record, frame, fromSource);
            } else {
                undecoded++;
            }
        } finally {
            ReferenceCountUtil.release(checked.frame());
        }
    }

    private void gap(CaptureRecord.Gap gap) {
        checks.gap(gap);
        channel(gap.channel()).dropped += gap.frames();
        droppedFrames += gap.frames();
        droppedBytes += gap.wireBytes();
    }

    /** What a frame carried: the VM, the course of the session, pages, device data, iteration ends. */
    private void content(CaptureRecord.FrameRecord record, Frame frame, boolean fromSource) {
        String from = fromSource ? "source" : "destination";
        if (frame instanceof Frame.VmDescription description) {
            describe(description);
            milestone(record, from, frame);
        } else if (frame instanceof Frame.Phase change) {
            PhaseCode code = PhaseCode.of(change.phase());
            phase = code == null ? "phase " + change.phase() : code.label();
            if (phasesSeen.add(phase)) {
                milestone(record, from, frame);
            }
        } else if (frame instanceof Frame.Pages pages) {
            IterationAcc iteration = iteration(pages.iteration());
            iteration.time(record.nanos());
            iteration.pages += pages.count();
            iteration.zeroPages += pages.zeroPages();
            iteration.channelPages.merge(record.channel().toString(), (long) pages.count(), Long::sum);
            pages.forEachIndex(index -> iteration.pageSet += mix(index));
            if (!record.pageDataLeftOut()) {
                // With their data, each page is checked against its own CRC, as the destination checks it.
                pages.forEach(new Frame.Pages.PageVisitor() {
                    @Override
                    public void zero(long index) {
                    }

                    @Override
                    public void intact(long index, ByteBuffer data) {
                    }

                    @Override
                    public void torn(long index) {
                        iteration.tornPages++;
                    }
                });
            }
        } else if (frame instanceof Frame.DeviceData data) {
            int at = channelIteration.getOrDefault(record.channel(), 0);
            IterationAcc iteration = iteration(at);
            iteration.time(record.nanos());
            iteration.deviceBytes += data.content().readableBytes();
            device(data.device()).chunk(data.offset(), data.content());
        } else if (frame instanceof Frame.DataEnd dataEnd) {
            channelIteration.put(record.channel(), dataEnd.iteration() + 1);
            iteration(dataEnd.iteration()).time(record.nanos());
        } else if (frame instanceof Frame.IterationEnd iterationEnd) {
            IterationAcc iteration = iteration(iterationEnd.iteration());
            iteration.iterationEndPages = iterationEnd.pages();
            iteration.phase = phase;
        } else if (frame instanceof Frame.IterationDone done) {
            iteration(done.iteration()).done = true;
        } else if (frame instanceof Frame.DeviceEnd deviceEnd) {
            device(deviceEnd.device()).endTotal = deviceEnd.totalBytes();
        } else if (frame instanceof Frame.DeviceInitial initial) {
            device(initial.device()).rounds.add(new InspectionReport.InitialRound(initial.generation(), initial.endOffset()));
        } else if (frame instanceof Frame.VmAccepted || frame instanceof Frame.VmRefused || frame instanceof Frame.Prepare
                || frame instanceof Frame.Prepared || frame instanceof Frame.Commit || frame instanceof Frame.Confirm
                || frame instanceof Frame.Abort) {
            milestone(record, from, frame);
        }
    }

    private void describe(Frame.VmDescription description) {
        JsonNode json;
        try {
            json = LENIENT.readTree(description.description());
        } catch (IOException e) {
            notes.add("the VM description is not JSON: " + e.getMessage());
            json = LENIENT.createObjectNode();
        }
        deviceRefs.clear();
        int index = 0;
        for (JsonNode device : json.path("devices")) {
            deviceRefs.add(new InspectionReport.DeviceRef(index++, device.path("id").asText(null), device.path("kind").asText(null),
                    device.path("formatVersion").asInt()));
        }
        vm = new InspectionReport.Vm(description.memoryBytes(), description.pageSize(), description.dataChannels(), List.copyOf(deviceRefs));
    }

    private void milestone(CaptureRecord.FrameRecord record, String from, Frame frame) {
        milestones.add(new InspectionReport.Milestone(millis(record.nanos()), record.channel().toString(), from, Frames.describe(frame)));
    }

    private void mark(CaptureRecord.FrameRecord record, long number, Frame frame, boolean fromSource) {
        int type = record.typeCode();
        if (type == FrameType.KEEPALIVE.code() || type == FrameType.KEEPALIVE_ACK.code()) {
            return;
        }
        byte[] bytes = record.bytes();
        CRC32C digest = new CRC32C();
        if (bytes.length >= 8) {
            digest.update(bytes, 0, 8);
        }
        if (bytes.length > 16) {
            digest.update(bytes, 16, bytes.length - 16);
        }
        int crc = bytes.length >= 16 ? ByteBuffer.wrap(bytes, 12, 4).getInt() : 0;
        CRC32C indices = new CRC32C();
        if (frame instanceof Frame.Pages pages) {
            ByteBuffer index = ByteBuffer.allocate(8);
            pages.forEachIndex(page -> indices.update(index.clear().putLong(page).flip()));
        }
        frameMarks.computeIfAbsent(stream(record.channel(), fromSource), k -> new ArrayList<>())
                .add(new FrameMark(number, record.sequence(), type, record.wireBytes(), (int) digest.getValue(), (int) indices.getValue(), crc,
                        !record.pageDataLeftOut() && !record.cut(), frame == null ? Frames.name(type) : Frames.describe(frame),
                        millis(record.nanos())));
    }

    /** "data#0 from source": a channel's frames by who sent them, the same name on either side's capture. */
    static String stream(CaptureFormat.Channel channel, boolean fromSource) {
        return channel + " from " + (fromSource ? "source" : "destination");
    }

    private String where(CaptureRecord.FrameRecord record, long number) {
        long sequence = record.sequence();
        return String.format(java.util.Locale.ROOT, "%s %s frame %d%s at %.3f ms, file offset %d", record.channel(),
                record.direction().label(), number, sequence < 0 ? "" : " (sequence " + sequence + ")", millis(record.nanos()),
                record.offset());
    }

    // ---- the report ----------------------------------------------------------------------------

    private InspectionReport report() {
        // What the frames carried is judged only when every frame is there and decoded: a missing one is
        // said once, where it is missing, and not again as each thing it carried.
        boolean complete = droppedFrames == 0 && undecoded == 0 && end != null && end.droppedFrames() == 0;
        if (!complete) {
            long dropped = end != null ? Math.max(end.droppedFrames(), droppedFrames) : droppedFrames;
            if (dropped > 0) {
                notes.add(dropped + " frames were not captured (the capture's writer was behind): sequences jump where GAP records"
                        + " say so, and what those frames carried is missing below");
            }
        }
        List<InspectionReport.Channel> channelReports = new ArrayList<>();
        for (ChannelAcc channel : channels.values()) {
            channelReports.add(channel.report());
        }
        List<InspectionReport.Iteration> iterationReports = new ArrayList<>();
        int dataChannels = vm == null ? -1 : vm.dataChannels();
        for (IterationAcc iteration : iterations.values()) {
            iterationReports.add(iteration.report());
            if (iteration.iterationEndPages != null && complete && iteration.iterationEndPages != iteration.pages
                    && (dataChannels < 0 || iteration.channelPages.size() <= dataChannels)) {
                failures.add(new InspectionReport.Failure("iteration", "iteration " + iteration.number, "ITERATION_END counts "
                        + iteration.iterationEndPages + " pages, the data channels carried " + iteration.pages));
            }
        }
        List<InspectionReport.Device> deviceReports = new ArrayList<>();
        long deviceBytes = 0;
        for (DeviceAcc device : devices.values()) {
            deviceReports.add(device.report(complete));
            deviceBytes += device.bytes;
        }
        long pages = 0;
        long zeroPages = 0;
        for (IterationAcc iteration : iterations.values()) {
            pages += iteration.pages;
            zeroPages += iteration.zeroPages;
        }
        JsonNode metadata;
        try {
            metadata = LENIENT.readTree(header == null || header.metadata().isEmpty() ? "{}" : header.metadata());
        } catch (IOException e) {
            notes.add("the capture's metadata is not JSON: " + e.getMessage());
            metadata = LENIENT.createObjectNode();
        }
        InspectionReport.Capture capture = header == null ? null : new InspectionReport.Capture(header.version(), side.label(),
                metadata.path("migration").asText(null), metadata.path("vm").asText(null), header.session().toString(),
                header.protocolVersion(), metadata.path("ferryd").asText(null), Instant.ofEpochMilli(header.startedAtMillis()).toString(),
                header.pageData(), end == null ? null : end.outcome(), millis(end == null ? lastNanos : end.nanos()));
        if (header != null && !header.pageData()) {
            notes.add("captured without page data: PAGES frames hold their meta (prefix and entries), which their CRC32C covers;"
                    + " each page's own CRC, which covers its data, is not checked, and torn pages are not known");
        }
        InspectionReport.Totals totals = new InspectionReport.Totals(frames, wireBytes, pages, zeroPages,
                (pages - zeroPages) * Frame.Pages.PAGE_SIZE, deviceBytes, millis(end == null ? lastNanos : end.nanos()),
                end == null ? droppedFrames : Math.max(end.droppedFrames(), droppedFrames), end == null ? droppedBytes
                : Math.max(end.droppedBytes(), droppedBytes));
        return new InspectionReport(file.toString(), capture, vm, List.copyOf(milestones), channelReports, iterationReports,
                deviceReports, totals, List.copyOf(failures), List.copyOf(notes), failures.isEmpty());
    }

    private Fingerprints fingerprints() {
        Map<String, List<RecordMark>> records = new TreeMap<>();
        for (DeviceAcc device : devices.values()) {
            records.put(device.name(), device.marks);
        }
        Map<Integer, Long> pageSets = new TreeMap<>();
        iterations.forEach((number, iteration) -> pageSets.put(number, iteration.pageSet));
        return new Fingerprints(frameMarks, records, pageSets);
    }

    private ChannelAcc channel(CaptureFormat.Channel channel) {
        return channels.computeIfAbsent(channel, ChannelAcc::new);
    }

    private IterationAcc iteration(int number) {
        return iterations.computeIfAbsent(number, IterationAcc::new);
    }

    private DeviceAcc device(int index) {
        return devices.computeIfAbsent(index, DeviceAcc::new);
    }

    private static double millis(long nanos) {
        return Math.round(nanos / 1_000.0) / 1_000.0;
    }

    /** A page index spread over 64 bits, so that a sum of them tells sets of pages apart. */
    private static long mix(long index) {
        long z = index + 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    // ---- what is gathered ----------------------------------------------------------------------

    private final class ChannelAcc {
        private final CaptureFormat.Channel channel;
        private final Map<CaptureFormat.Direction, DirectionAcc> directions = new EnumMap<>(CaptureFormat.Direction.class);
        private long crcChecked;
        private long pageDataLeftOut;
        private long dropped;

        ChannelAcc(CaptureFormat.Channel channel) {
            this.channel = channel;
        }

        DirectionAcc direction(CaptureFormat.Direction direction) {
            return directions.computeIfAbsent(direction, d -> new DirectionAcc());
        }

        InspectionReport.Channel report() {
            String name = channel.toString();
            boolean ok = failures.stream().noneMatch(f -> f.where().startsWith(name + " "));
            String rules = dropped > 0 ? "checked up to the first frame the capture dropped"
                    : channel.role() == ChannelRole.DATA && vm == null ? "not checked: the capture has no VM description" : "checked";
            return new InspectionReport.Channel(name, direction(CaptureFormat.Direction.SENT).report(),
                    direction(CaptureFormat.Direction.RECEIVED).report(), crcChecked, pageDataLeftOut, dropped, rules, ok);
        }
    }

    private static final class DirectionAcc {
        private final Map<FrameType, Long> types = new EnumMap<>(FrameType.class);
        private final Map<String, Long> unknown = new TreeMap<>();
        private long frames;
        private long wireBytes;
        private Long firstSequence;
        private Long lastSequence;
        private Double firstMs;
        private Double lastMs;

        void add(CaptureRecord.FrameRecord record, Frame frame) {
            frames++;
            wireBytes += record.wireBytes();
            long sequence = record.sequence();
            if (sequence >= 0) {
                if (firstSequence == null) {
                    firstSequence = sequence;
                }
                lastSequence = sequence;
            }
            if (firstMs == null) {
                firstMs = millis(record.nanos());
            }
            lastMs = millis(record.nanos());
            FrameType type = frame != null ? frame.type() : FrameType.of(record.typeCode());
            if (type != null) {
                types.merge(type, 1L, Long::sum);
            } else {
                unknown.merge(Frames.name(record.typeCode()), 1L, Long::sum);
            }
        }

        InspectionReport.Direction report() {
            Map<String, Long> byType = new LinkedHashMap<>();
            types.forEach((type, count) -> byType.put(type.name(), count));
            byType.putAll(unknown);
            return new InspectionReport.Direction(frames, wireBytes, firstSequence, lastSequence, byType, firstMs, lastMs);
        }
    }

    private final class IterationAcc {
        private final int number;
        private final Map<String, Long> channelPages = new TreeMap<>();
        private String phase;
        private long pages;
        private long zeroPages;
        private long deviceBytes;
        private long pageSet;
        private long tornPages;
        private Long iterationEndPages;
        private boolean done;
        private long firstNanos = -1;
        private long lastNanos = -1;

        IterationAcc(int number) {
            this.number = number;
        }

        void time(long nanos) {
            if (firstNanos < 0) {
                firstNanos = nanos;
            }
            lastNanos = Math.max(lastNanos, nanos);
        }

        InspectionReport.Iteration report() {
            return new InspectionReport.Iteration(number, phase, pages, zeroPages, header.pageData() ? tornPages : null,
                    (pages - zeroPages) * Frame.Pages.PAGE_SIZE, deviceBytes, channelPages, iterationEndPages, done, firstNanos < 0 ? null : millis(firstNanos),
                    lastNanos < 0 ? null : millis(lastNanos));
        }
    }

    /** A device's chunks, put back in order by their offsets and read as its stream. */
    private final class DeviceAcc {
        private final int index;
        private final List<RecordMark> marks = new ArrayList<>();
        private final List<InspectionReport.InitialRound> rounds = new ArrayList<>();
        private final TreeMap<Long, byte[]> early = new TreeMap<>();
        private final StreamReader reader;
        private long chunks;
        private long bytes;
        private long next;
        private Long endTotal;
        private String overlap;

        DeviceAcc(int index) {
            this.index = index;
            this.reader = new StreamReader((offset, type, payload) -> {
                CRC32C crc = new CRC32C();
                crc.update(payload.duplicate());
                marks.add(new RecordMark(offset, StreamFormat.typeName(type), payload.remaining(), (int) crc.getValue()));
            });
        }

        String name() {
            InspectionReport.DeviceRef ref = index < deviceRefs.size() ? deviceRefs.get(index) : null;
            return ref == null || ref.id() == null ? "device " + index : ref.id();
        }

        void chunk(long offset, ByteBuf content) {
            chunks++;
            int length = content.readableBytes();
            bytes += length;
            if (offset == next) {
                for (ByteBuffer part : content.nioBuffers()) {
                    reader.write(part);
                }
                next += length;
                while (!early.isEmpty() && early.firstKey() == next) {
                    byte[] waiting = early.pollFirstEntry().getValue();
                    reader.write(ByteBuffer.wrap(waiting));
                    next += waiting.length;
                }
            } else if (offset > next) {
                byte[] copy = new byte[length];
                content.getBytes(content.readerIndex(), copy);
                early.put(offset, copy);
            } else if (overlap == null) {
                overlap = "a chunk at offset " + offset + " overlaps bytes already received (up to " + next + ")";
            }
        }

        InspectionReport.Device report(boolean complete) {
            String problem = overlap != null ? overlap
                    : !early.isEmpty() ? "bytes " + next + " to " + early.firstKey() + " of the stream never arrived"
                    : endTotal != null && endTotal != next ? "DEVICE_END says " + endTotal + " bytes, " + next + " arrived"
                    : null;
            String streamProblem = reader.finish();
            // A stream without its end and without DEVICE_END: the migration ended before it did (a failure, a dry run).
            if (problem == null && streamProblem != null && !(endTotal == null && reader.error() == null)) {
                problem = streamProblem;
            }
            if (problem != null && complete) {
                failures.add(new InspectionReport.Failure("device_stream", "device " + index + " (" + name() + ") at stream offset "
                        + reader.bytes(), problem));
            }
            String status = problem != null ? (complete ? problem : "incomplete: frames of it were not captured or failed their checks")
                    : streamProblem == null ? "complete" : "incomplete: the migration ended after " + reader.bytes() + " bytes of it";
            StreamFormat.Header h = reader.header();
            InspectionReport.DeviceRef ref = index < deviceRefs.size() ? deviceRefs.get(index) : null;
            InspectionReport.Stream stream = new InspectionReport.Stream(h == null ? null : h.version(), h == null ? null : h.kind(),
                    h == null ? null : h.configText(), h == null ? null : h.memoryBytes(), h == null ? null : h.pageSize(),
                    new TreeMap<>(reader.counts()), new TreeMap<>(reader.firstOffsets()),
                    reader.stateOffset() < 0 ? null : reader.stateOffset(), reader.stateOffset() < 0 ? null : reader.stateBytes(),
                    reader.endOffset() < 0 ? null : reader.endOffset(), status);
            return new InspectionReport.Device(index, ref == null ? null : ref.id(), ref == null ? null : ref.kind(), chunks, bytes, endTotal,
                    List.copyOf(rounds), stream);
        }
    }
}
