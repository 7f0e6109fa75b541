package dev.ferry.orchestrator.capture;

import dev.ferry.orchestrator.FerrydCommand;
import dev.ferry.orchestrator.api.Json;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code ferryd inspect FILE [--diff FILE2] [--output json]}: decodes a captured migration stream (a file
 * the daemon wrote in its {@code --capture-dir}): the capture's header, the session's milestones, the
 * frames of every channel with their checks, each pass over memory with its pages, each device's data
 * with its offsets and its stream's header and records, and the totals. Exit status 0 when it decodes
 * and every check holds, 1 when a check fails (named, with the frame's place), 2 on usage errors. With
 * {@code --diff}, the first difference of each channel, device and iteration between two captures; 0
 * only when there is none and both hold.
 */
@Command(name = "inspect", description = "Decodes a captured migration stream (a file of ferryd --capture-dir): frames per channel"
        + " with their checks, iterations with their pages, each device's data and stream; --diff compares two captures.",
        footer = {"", "Exit status: 0 it decodes and every check holds (with --diff: and no difference), 1 a check failed or the"
                + " captures differ, 2 usage error."})
public final class InspectCommand implements Callable<Integer> {
    /** How the report is printed. */
    enum Output {
        text, json
    }

    @ParentCommand
    private FerrydCommand ferryd;

    @Parameters(paramLabel = "FILE", description = "a capture (MIGRATION-SIDE.fcap)")
    private Path file;

    @Option(names = "--diff", paramLabel = "FILE2", description = "another capture to compare FILE with: the other side of the"
            + " same migration, or another run")
    private Path other;

    @Option(names = {"-o", "--output"}, paramLabel = "FORMAT", description = "text (default) or json")
    private Output output = Output.text;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "this help")
    private boolean help;

    @Override
    public Integer call() {
        PrintStream out = ferryd.out();
        PrintStream err = ferryd.err();
        for (Path path : other == null ? new Path[] {file} : new Path[] {file, other}) {
            if (!Files.isRegularFile(path) || !Files.isReadable(path)) {
                err.println("ferryd inspect: " + path + ": " + (Files.exists(path) ? "not a readable file" : "no such file"));
                return 2;
            }
        }
        try {
            Inspection.Result first = Inspection.inspect(file);
            if (other == null) {
                if (output == Output.json) {
                    out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(first.report()));
                } else {
                    InspectionText.print(first.report(), out);
                }
                out.flush();
                return first.report().ok() ? 0 : 1;
            }
            CaptureDiff diff = CaptureDiff.compare(first, Inspection.inspect(other));
            if (output == Output.json) {
                out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(diff));
            } else {
                diff.print(out);
            }
            out.flush();
            return diff.identical() ? 0 : 1;
        } catch (IOException e) {
            err.println("ferryd inspect: cannot read " + file + (other == null ? "" : " or " + other) + ": " + e.getMessage());
            return 2;
        }
    }
}
