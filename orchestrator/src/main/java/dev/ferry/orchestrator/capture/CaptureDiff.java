package dev.ferry.orchestrator.capture;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * {@code ferryd inspect A --diff B}: two captures compared, the first difference of each channel (its
 * frames by who sent them, keepalives left out), each device's stream (record by record) and each
 * iteration (pages, zero pages, device data, which pages). A source's and a destination's capture of
 * the same migration hold the same frames; two runs show where they went apart.
 *
 * @param relation  what the two are to each other
 * @param differences the first difference of each channel, device and iteration that differs
 * @param same      what is the same in both
 * @param failures  checks that failed in either capture
 */
public record CaptureDiff(String a, String b, String relation, List<Difference> differences, List<String> same, List<String> failures) {

    /** Where two captures first differ: a channel, a device or an iteration, and how. */
    public record Difference(String scope, String what) {
    }

    public boolean identical() {
        return differences.isEmpty() && failures.isEmpty();
    }

    public static CaptureDiff compare(Inspection.Result a, Inspection.Result b) {
        List<Difference> differences = new ArrayList<>();
        List<String> same = new ArrayList<>();
        InspectionReport.Capture ca = a.report().capture();
        InspectionReport.Capture cb = b.report().capture();
        String relation = ca == null || cb == null ? "one of them is not a capture"
                : ca.session().equals(cb.session()) ? (ca.side().equals(cb.side()) ? "the same side of the same migration, twice"
                : "the same migration, seen from its " + ca.side() + " and its " + cb.side())
                : "two migrations (" + ca.migration() + " and " + cb.migration() + ")";
        frames(a.fingerprints().frames(), b.fingerprints().frames(), differences, same);
        devices(a.fingerprints().devices(), b.fingerprints().devices(), differences, same);
        iterations(a.report(), b.report(), a.fingerprints().pageSets(), b.fingerprints().pageSets(), differences, same);
        List<String> failures = new ArrayList<>();
        a.report().failures().forEach(f -> failures.add("A: " + f.check() + ": " + f.where() + ": " + f.message()));
        b.report().failures().forEach(f -> failures.add("B: " + f.check() + ": " + f.where() + ": " + f.message()));
        return new CaptureDiff(a.report().file(), b.report().file(), relation, differences, same, failures);
    }

    private static void frames(Map<String, List<Inspection.FrameMark>> a, Map<String, List<Inspection.FrameMark>> b,
                               List<Difference> differences, List<String> same) {
        for (String stream : new TreeSet<>(union(a.keySet(), b.keySet()))) {
            List<Inspection.FrameMark> fa = a.getOrDefault(stream, List.of());
            List<Inspection.FrameMark> fb = b.getOrDefault(stream, List.of());
            int n = Math.min(fa.size(), fb.size());
            String difference = null;
            for (int i = 0; i < n && difference == null; i++) {
                Inspection.FrameMark x = fa.get(i);
                Inspection.FrameMark y = fb.get(i);
                String how = differ(x, y);
                if (how != null) {
                    difference = String.format(Locale.ROOT, "frame %d: %s; A: %s (sequence %d, %s), B: %s (sequence %d, %s)", i, how,
                            x.frame(), x.sequence(), InspectionText.ms(x.atMs()), y.frame(), y.sequence(), InspectionText.ms(y.atMs()));
                }
            }
            if (difference == null && fa.size() != fb.size()) {
                boolean aLonger = fa.size() > fb.size();
                Inspection.FrameMark first = (aLonger ? fa : fb).get(n);
                difference = String.format(Locale.ROOT, "%s has %d more frame%s, from frame %d: %s", aLonger ? "A" : "B",
                        Math.abs(fa.size() - fb.size()), Math.abs(fa.size() - fb.size()) == 1 ? "" : "s", n, first.frame());
            }
            if (difference != null) {
                differences.add(new Difference(stream, difference));
            } else {
                same.add(stream + ": " + n + " frames");
            }
        }
    }

    /** How two frames differ, or null. Page data not captured is compared by the CRC that covers it, where the sequences agree. */
    private static String differ(Inspection.FrameMark x, Inspection.FrameMark y) {
        if (x.type() != y.type()) {
            return "the frame types differ";
        }
        if (x.wireBytes() != y.wireBytes()) {
            return "the lengths differ (" + x.wireBytes() + " and " + y.wireBytes() + " bytes)";
        }
        if (x.digest() != y.digest()) {
            // A PAGES frame's entries hold each page's CRC: the same pages with other contents, or other pages.
            return x.type() != dev.ferry.protocol.FrameType.PAGES.code() ? "the payloads differ"
                    : x.pageIndices() == y.pageIndices() ? "the same pages, with other contents (their CRCs differ)" : "other pages";
        }
        if (x.sequence() == y.sequence() && x.crc() != y.crc()) {
            return x.whole() && y.whole() ? "the CRC32C fields differ" : "the page data differs (by the CRC32C that covers it)";
        }
        return null;
    }

    private static void devices(Map<String, List<Inspection.RecordMark>> a, Map<String, List<Inspection.RecordMark>> b,
                                List<Difference> differences, List<String> same) {
        for (String device : new TreeSet<>(union(a.keySet(), b.keySet()))) {
            List<Inspection.RecordMark> ra = a.getOrDefault(device, List.of());
            List<Inspection.RecordMark> rb = b.getOrDefault(device, List.of());
            int n = Math.min(ra.size(), rb.size());
            String difference = null;
            for (int i = 0; i < n && difference == null; i++) {
                Inspection.RecordMark x = ra.get(i);
                Inspection.RecordMark y = rb.get(i);
                if (!x.equals(y)) {
                    difference = "record " + i + " at stream offset " + x.offset() + (x.offset() == y.offset() ? "" : " (B: " + y.offset() + ")")
                            + ": A " + x.type() + " of " + x.length() + " bytes, B " + y.type() + " of " + y.length() + " bytes"
                            + (x.type().equals(y.type()) && x.length() == y.length() ? ", different contents" : "");
                }
            }
            if (difference == null && ra.size() != rb.size()) {
                boolean aLonger = ra.size() > rb.size();
                Inspection.RecordMark first = (aLonger ? ra : rb).get(n);
                difference = (aLonger ? "A" : "B") + " has " + Math.abs(ra.size() - rb.size()) + " more records, from a " + first.type()
                        + " record at stream offset " + first.offset();
            }
            if (difference != null) {
                differences.add(new Difference("device " + device, difference));
            } else {
                same.add("device " + device + ": " + n + " records");
            }
        }
    }

    private static void iterations(InspectionReport a, InspectionReport b, Map<Integer, Long> pagesA, Map<Integer, Long> pagesB,
                                   List<Difference> differences, List<String> same) {
        Map<Integer, InspectionReport.Iteration> ia = new TreeMap<>();
        a.iterations().forEach(i -> ia.put(i.iteration(), i));
        Map<Integer, InspectionReport.Iteration> ib = new TreeMap<>();
        b.iterations().forEach(i -> ib.put(i.iteration(), i));
        int identical = 0;
        for (int number : new TreeSet<>(union(ia.keySet(), ib.keySet()))) {
            InspectionReport.Iteration x = ia.get(number);
            InspectionReport.Iteration y = ib.get(number);
            String difference;
            if (x == null || y == null) {
                difference = "only in " + (x == null ? "B" : "A");
            } else if (x.pages() != y.pages() || x.zeroPages() != y.zeroPages()) {
                difference = "A " + x.pages() + " pages (" + x.zeroPages() + " zero), B " + y.pages() + " pages (" + y.zeroPages() + " zero)";
            } else if (x.deviceBytes() != y.deviceBytes()) {
                difference = "A " + x.deviceBytes() + " bytes of device data, B " + y.deviceBytes();
            } else if (!Objects.equals(pagesA.get(number), pagesB.get(number))) {
                difference = "as many pages, but not the same ones";
            } else if (!Objects.equals(x.phase(), y.phase())) {
                difference = "ended in " + x.phase() + " in A, in " + y.phase() + " in B";
            } else {
                identical++;
                continue;
            }
            differences.add(new Difference("iteration " + number, difference));
        }
        if (identical > 0) {
            same.add(identical + (identical == 1 ? " iteration" : " iterations") + ": pages, zero pages, device data");
        }
    }

    private static <T> java.util.Set<T> union(java.util.Set<T> a, java.util.Set<T> b) {
        java.util.Set<T> all = new java.util.LinkedHashSet<>(a);
        all.addAll(b);
        return all;
    }

    void print(PrintStream out) {
        out.println("A: " + a);
        out.println("B: " + b);
        out.println("  " + relation);
        for (String what : same) {
            out.println("  same: " + what);
        }
        for (Difference difference : differences) {
            out.println("  DIFF " + difference.scope() + ": " + difference.what());
        }
        for (String failure : failures) {
            out.println("  FAIL " + failure);
        }
        out.println("result: " + (identical() ? "no difference" : differences.size() + (differences.size() == 1 ? " difference" : " differences")
                + (failures.isEmpty() ? "" : ", " + failures.size() + " failed checks")));
    }
}
