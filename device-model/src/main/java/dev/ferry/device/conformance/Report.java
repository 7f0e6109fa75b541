package dev.ferry.device.conformance;

import java.util.List;
import java.util.Locale;

/** The kit's verdicts, in order, and the two ways to print them: a line each, and JUnit XML for CI. */
public record Report(List<Verdict> verdicts) {
    public Report {
        verdicts = List.copyOf(verdicts);
    }

    /** Whether every rule held (or could not apply) for every kind. */
    public boolean allHeld() {
        return verdicts.stream().noneMatch(v -> v instanceof Verdict.Violated);
    }

    public List<Verdict.Violated> violations() {
        return verdicts.stream().filter(v -> v instanceof Verdict.Violated).map(v -> (Verdict.Violated) v).toList();
    }

    /**
     * One line per rule and kind: {@code RULE KIND held: what was checked}, {@code RULE KIND skipped: why}, or
     * {@code RULE KIND VIOLATED: the problem; writes: the sequence that shows it}.
     */
    public List<String> lines() {
        return verdicts.stream().map(Report::line).toList();
    }

    public static String line(Verdict verdict) {
        String head = String.format(Locale.ROOT, "%-4s %-10s ", verdict.rule(), verdict.kind());
        if (verdict instanceof Verdict.Held held) {
            return head + "held: " + held.checked();
        }
        if (verdict instanceof Verdict.Skipped skipped) {
            return head + "skipped: " + skipped.reason();
        }
        Verdict.Violated violated = (Verdict.Violated) verdict;
        return head + "VIOLATED: " + violated.problem() + (violated.writes().isEmpty() ? "" : "; writes: " + violated.writes());
    }

    /** The closing line: counts of rules held, skipped and violated. */
    public String summary() {
        long held = verdicts.stream().filter(v -> v instanceof Verdict.Held).count();
        long skipped = verdicts.stream().filter(v -> v instanceof Verdict.Skipped).count();
        long violated = verdicts.size() - held - skipped;
        return "conformance: " + held + " held, " + violated + " violated, " + skipped + " skipped"
                + (allHeld() ? "" : " (" + String.join(", ", violations().stream().map(v -> v.rule() + " " + v.kind()).toList()) + ")");
    }

    /**
     * JUnit XML (the Ant/Surefire schema most CI systems read): one test suite per kind, one test case per rule
     * named with the rule's number, a {@code failure} with the counter-example where the rule was violated.
     */
    public String junitXml() {
        StringBuilder xml = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"ferry conformance\">\n");
        List<String> kinds = verdicts.stream().map(Verdict::kind).distinct().toList();
        for (String kind : kinds) {
            List<Verdict> ofKind = verdicts.stream().filter(v -> v.kind().equals(kind)).toList();
            long failures = ofKind.stream().filter(v -> v instanceof Verdict.Violated).count();
            long skipped = ofKind.stream().filter(v -> v instanceof Verdict.Skipped).count();
            double seconds = ofKind.stream().mapToLong(Verdict::micros).sum() / 1e6;
            xml.append(String.format(Locale.ROOT, "  <testsuite name=\"%s\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\" time=\"%.3f\">%n",
                    escape(kind), ofKind.size(), failures, skipped, seconds));
            for (Verdict v : ofKind) {
                xml.append(String.format(Locale.ROOT, "    <testcase classname=\"ferry.conformance.%s\" name=\"%s %s\" time=\"%.3f\"",
                        escape(kind), v.rule(), escape(kind), v.micros() / 1e6));
                if (v instanceof Verdict.Held) {
                    xml.append("/>\n");
                } else if (v instanceof Verdict.Skipped s) {
                    xml.append(">\n      <skipped message=\"").append(escape(s.reason())).append("\"/>\n    </testcase>\n");
                } else {
                    Verdict.Violated f = (Verdict.Violated) v;
                    xml.append(">\n      <failure message=\"").append(escape(v.rule() + ": " + f.problem())).append("\" type=\"")
                            .append(v.rule()).append("\">").append(escape("writes: " + f.writes())).append("</failure>\n    </testcase>\n");
                }
            }
            xml.append("  </testsuite>\n");
        }
        return xml.append("</testsuites>\n").toString();
    }

    private static String escape(String text) {
        StringBuilder out = new StringBuilder(text.length());
        for (char c : text.toCharArray()) {
            switch (c) {
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '&' -> out.append("&amp;");
                case '"' -> out.append("&quot;");
                case '\'' -> out.append("&apos;");
                default -> {
                    if (c >= 0x20 || c == '\n' || c == '\t') {
                        out.append(c);
                    }
                }
            }
        }
        return out.toString();
    }
}
