package dev.ferry.orchestrator.conformance;

import dev.ferry.device.DeviceKind;
import dev.ferry.device.DeviceKinds;
import dev.ferry.device.conformance.ConformanceKit;
import dev.ferry.device.conformance.Report;
import dev.ferry.device.conformance.Verdict;
import dev.ferry.orchestrator.FerrydCommand;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/**
 * {@code ferryd conformance}: the conformance kit (SPEC §1–§3, W7–W9) against device kinds, built-in or loaded
 * from jars, one line per rule and kind as it is checked.
 */
@Command(name = "conformance", mixinStandardHelpOptions = true,
        description = {"Runs every rule of SPEC §1-§3 and W7-W9 against device kinds (all known by default): one line per rule"
                + " and kind, 'held' or the first counter-example with the exact writes that show it."},
        footer = {"", "Exit status: 0 every rule held, 1 a rule was violated, 2 usage error (an unknown kind, a bad jar)."})
public final class ConformanceCommand implements Callable<Integer> {
    @ParentCommand
    private FerrydCommand parent;

    @Option(names = "--kind", paramLabel = "KIND", description = "a kind to check (repeatable; default every kind known)")
    private List<String> kinds = new ArrayList<>();

    @Option(names = "--device-jar", paramLabel = "JAR", description = "a jar of device kinds to load first (repeatable)")
    private List<Path> jars = new ArrayList<>();

    @Option(names = "--junit-xml", paramLabel = "FILE", description = "also write the results as JUnit XML, a test case per rule and kind")
    private Path junitXml;

    @Override
    public Integer call() {
        PrintStream out = parent.out();
        PrintStream err = parent.err();
        DeviceKinds known;
        try {
            known = DeviceKinds.load(jars);
        } catch (DeviceKinds.BadDeviceJar e) {
            err.println("ferryd conformance: --device-jar " + e.getMessage());
            return 2;
        }
        List<DeviceKind> selected = new ArrayList<>();
        for (String name : kinds) {
            if (!known.contains(name)) {
                err.println("ferryd conformance: --kind: unknown kind '" + name + "' (known: " + known.known() + ")");
                return 2;
            }
            DeviceKind kind = known.of(name);
            if (!selected.contains(kind)) {
                selected.add(kind);
            }
        }
        if (selected.isEmpty()) {
            selected.addAll(known.all());
        }
        ConformanceKit kit = new ConformanceKit(selected);
        List<Verdict> verdicts = new ArrayList<>();
        for (DeviceKind kind : selected) {
            for (dev.ferry.device.conformance.Rule rule : dev.ferry.device.conformance.Rule.values()) {
                Verdict verdict = kit.check(kind, rule);
                verdicts.add(verdict);
                out.println(Report.line(verdict));
                out.flush();
            }
        }
        Report report = new Report(verdicts);
        out.println(report.summary());
        if (junitXml != null) {
            try {
                Files.writeString(junitXml, report.junitXml(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                err.println("ferryd conformance: --junit-xml " + junitXml + ": " + e.getMessage());
                return 2;
            }
        }
        return report.allHeld() ? 0 : 1;
    }
}
