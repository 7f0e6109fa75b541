package dev.ferry.orchestrator.capture;

import dev.ferry.orchestrator.cli.Progress;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.StringJoiner;

/** {@code ferryd inspect}'s report as text, for a terminal. */
final class InspectionText {
    private InspectionText() {
    }

    static void print(InspectionReport report, PrintStream out) {
        InspectionReport.Capture capture = report.capture();
        out.println("capture " + report.file());
        if (capture != null) {
            out.printf(Locale.ROOT, "  format %d, %s side of migration %s (VM %s), ferryd %s, protocol %d%n", capture.formatVersion(),
                    capture.side(), capture.migration(), capture.vm(), capture.ferryd(), capture.protocolVersion());
            out.printf(Locale.ROOT, "  session %s, started %s, %s, %s%n", capture.session(), capture.startedAt(),
                    capture.pageData() ? "with page data" : "without page data",
                    capture.outcome() == null ? "not closed" : "ended " + capture.outcome() + " after " + ms(capture.durationMs()));
        }
        InspectionReport.Vm vm = report.vm();
        if (vm != null) {
            StringJoiner devices = new StringJoiner(", ");
            vm.devices().forEach(d -> devices.add(d.index() + " " + d.id() + " (" + d.kind() + ")"));
            out.printf(Locale.ROOT, "vm: %s of memory in %d-byte pages, %d data channel%s; devices: %s%n", Progress.bytes(vm.memoryBytes()),
                    vm.pageSize(), vm.dataChannels(), vm.dataChannels() == 1 ? "" : "s", vm.devices().isEmpty() ? "none" : devices);
        }
        if (!report.milestones().isEmpty()) {
            out.println("milestones:");
            for (InspectionReport.Milestone milestone : report.milestones()) {
                out.printf(Locale.ROOT, "  %12s  %-8s %-12s %s%n", ms(milestone.atMs()), milestone.channel(), milestone.from(),
                        milestone.frame());
            }
        }
        out.println("channels:");
        for (InspectionReport.Channel channel : report.channels()) {
            out.printf(Locale.ROOT, "  %-8s sent %s, received %s%n", channel.channel(), direction(channel.sent()),
                    direction(channel.received()));
            out.printf(Locale.ROOT, "  %-8s CRC32C checked on %d frame%s%s%s; session rules %s; %s%n", "", channel.crcChecked(),
                    channel.crcChecked() == 1 ? "" : "s",
                    channel.pageDataLeftOut() == 0 ? "" : " (" + channel.pageDataLeftOut() + " PAGES without their page data)",
                    channel.dropped() == 0 ? "" : "; " + channel.dropped() + " frames dropped by the capture", channel.rules(),
                    channel.ok() ? "ok" : "FAILED");
            types("sent", channel.sent().types(), out);
            types("received", channel.received().types(), out);
        }
        if (!report.iterations().isEmpty()) {
            out.println("iterations:");
            out.printf(Locale.ROOT, "  %9s  %-12s %8s %8s %11s %12s  %-13s %s%n", "iteration", "phase", "pages", "zero", "page data",
                    "device data", "ITERATION_END", "pages per channel");
            for (InspectionReport.Iteration iteration : report.iterations()) {
                StringJoiner channels = new StringJoiner(", ");
                iteration.channelPages().forEach((channel, pages) -> channels.add(channel + " " + pages));
                out.printf(Locale.ROOT, "  %9d  %-12s %8d %8d %11s %12s  %-13s %s%n", iteration.iteration(),
                        iteration.phase() == null ? "-" : iteration.phase(), iteration.pages(), iteration.zeroPages(),
                        Progress.bytes(iteration.pageDataBytes()) + (iteration.tornPages() == null || iteration.tornPages() == 0 ? ""
                                : ", " + iteration.tornPages() + " torn"), Progress.bytes(iteration.deviceBytes()),
                        (iteration.iterationEndPages() == null ? "-" : iteration.iterationEndPages() + " pages")
                                + (iteration.done() ? ", done" : ""), channels);
            }
        }
        if (!report.devices().isEmpty()) {
            out.println("devices:");
            for (InspectionReport.Device device : report.devices()) {
                List<String> parts = new ArrayList<>();
                parts.add(device.chunks() + " chunk" + (device.chunks() == 1 ? "" : "s") + ", " + Progress.bytes(device.bytes()));
                if (device.endTotal() != null) {
                    parts.add("DEVICE_END at " + device.endTotal());
                }
                for (InspectionReport.InitialRound round : device.initialData()) {
                    parts.add("initial data round " + round.generation() + " ends at " + round.endOffset());
                }
                out.printf(Locale.ROOT, "  %d %s (%s): %s%n", device.index(), device.id(), device.kind(), String.join("; ", parts));
                InspectionReport.Stream stream = device.stream();
                if (stream.formatVersion() != null) {
                    out.printf(Locale.ROOT, "      header: format version %d, kind %s, config '%s', %s of device memory in %d-byte pages%n",
                            stream.formatVersion(), stream.kind(), stream.config(), Progress.bytes(stream.memoryBytes()), stream.pageSize());
                }
                // In the stream's order: each type where its first record begins.
                StringJoiner records = new StringJoiner(", ");
                stream.firstOffsets().entrySet().stream().sorted(Map.Entry.comparingByValue()).forEach(first -> {
                    long count = stream.records().getOrDefault(first.getKey(), 0L);
                    records.add(first.getKey() + (count == 1 ? " at " + first.getValue() : " " + count + " from " + first.getValue())
                            + (first.getKey().equals("STATE") ? " (" + stream.stateBytes() + " bytes)" : ""));
                });
                out.printf(Locale.ROOT, "      records: %s%n", records.length() == 0 ? "none" : records);
                out.printf(Locale.ROOT, "      stream: %s%s%n", stream.status(), stream.endOffset() == null ? ""
                        : ", end record at " + stream.endOffset() + ", its byte count and CRC32C hold");
            }
        }
        InspectionReport.Totals totals = report.totals();
        out.printf(Locale.ROOT, "totals: %d frames, %s on the wire in %s; %d pages (%d zero), %s of page data; %s of device data; %s%n",
                totals.frames(), Progress.bytes(totals.wireBytes()), ms(totals.durationMs()), totals.pages(), totals.zeroPages(),
                Progress.bytes(totals.pageDataBytes()), Progress.bytes(totals.deviceBytes()), totals.droppedFrames() == 0
                        ? "nothing dropped" : totals.droppedFrames() + " frames (" + Progress.bytes(totals.droppedBytes()) + ") dropped");
        for (String note : report.notes()) {
            out.println("note: " + note);
        }
        for (InspectionReport.Failure failure : report.failures()) {
            out.println("FAIL " + failure.check() + ": " + failure.where() + ": " + failure.message());
        }
        int failed = report.failures().size();
        out.println("result: " + (failed == 0 ? "every check holds" : failed + (failed == 1 ? " check failed" : " checks failed")));
    }

    private static String direction(InspectionReport.Direction direction) {
        if (direction.frames() == 0) {
            return "nothing";
        }
        return direction.frames() + " frame" + (direction.frames() == 1 ? "" : "s") + " (" + Progress.bytes(direction.wireBytes())
                + (direction.firstSequence() == null ? "" : ", sequence " + direction.firstSequence() + "-" + direction.lastSequence())
                + ")";
    }

    private static void types(String label, Map<String, Long> types, PrintStream out) {
        if (types.isEmpty()) {
            return;
        }
        StringJoiner joined = new StringJoiner(", ");
        types.forEach((type, count) -> joined.add(type + " " + count));
        out.printf(Locale.ROOT, "  %-8s   %s: %s%n", "", label, joined);
    }

    static String ms(double millis) {
        return String.format(Locale.ROOT, "%.3f ms", millis);
    }
}
