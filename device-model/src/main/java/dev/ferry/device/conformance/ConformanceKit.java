package dev.ferry.device.conformance;

import dev.ferry.device.DeviceKind;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * The conformance kit: runs the rules of SPEC §1–§3 and W7–W9 against device kinds, each kind in every
 * configuration it allows, and reports per rule and kind whether the rule held or the first counter-example
 * with the writes that show it. Deterministic: every random choice comes from a fixed seed.
 *
 * <pre>{@code
 * Report report = new ConformanceKit(DeviceKinds.load(jars).all()).run();
 * report.lines().forEach(System.out::println);
 * }</pre>
 */
public final class ConformanceKit {
    private final List<DeviceKind> kinds;
    private final List<DeviceKind> others;
    private final Set<Rule> rules;

    /** Every rule against each of {@code kinds}; wrong-kind data is taken from the built-in kinds and these. */
    public ConformanceKit(List<DeviceKind> kinds) {
        this(kinds, EnumSet.allOf(Rule.class));
    }

    public ConformanceKit(List<DeviceKind> kinds, Set<Rule> rules) {
        this.kinds = List.copyOf(kinds);
        List<DeviceKind> all = new ArrayList<>(DeviceKind.builtIn());
        for (DeviceKind kind : kinds) {
            if (!all.contains(kind)) {
                all.add(kind);
            }
        }
        this.others = List.copyOf(all);
        this.rules = rules.isEmpty() ? EnumSet.noneOf(Rule.class) : EnumSet.copyOf(rules);
    }

    /** Runs every rule against every kind, in the order of the kinds and then of the rules. */
    public Report run() {
        List<Verdict> verdicts = new ArrayList<>();
        for (DeviceKind kind : kinds) {
            for (Rule rule : Rule.values()) {
                if (rules.contains(rule)) {
                    verdicts.add(check(kind, rule));
                }
            }
        }
        return new Report(verdicts);
    }

    /** One rule against one kind. */
    public Verdict check(DeviceKind kind, Rule rule) {
        Rig rig = new Rig(kind);
        long start = System.nanoTime();
        try {
            if (rule == Rule.W8 && !kind.reinitialises()) {
                return new Verdict.Skipped(rule, kind.label(), "the kind does not re-initialise", micros(start));
            }
            String checked = run(rig, rule);
            return new Verdict.Held(rule, kind.label(), checked, micros(start));
        } catch (Violation v) {
            return new Verdict.Violated(rule, kind.label(), v.getMessage(), v.writes(), micros(start));
        } catch (RuntimeException | AssertionError e) {
            // A kind that throws where it must not is a counter-example too: the core cannot keep its rules.
            return new Verdict.Violated(rule, kind.label(), "the check could not complete: " + e, "", micros(start));
        }
    }

    private String run(Rig rig, Rule rule) {
        return switch (rule) {
            case D1, D2, D3, D4, D6, D7, D9 -> StateChecks.table(rig, rule);
            case D5 -> StateChecks.reset(rig);
            case D8 -> StateChecks.table(rig, rule) + "; " + WindowChecks.roundTrips(rig, others);
            case D10 -> BehaviourChecks.priorityOrder(rig);
            case D11 -> BehaviourChecks.ndma(rig);
            case D12 -> BehaviourChecks.stopped(rig);
            case D13 -> BehaviourChecks.error(rig);
            case W1 -> WindowChecks.pending(rig);
            case W2 -> WindowChecks.switchMidRecord(rig);
            case W3 -> WindowChecks.noLogging(rig);
            case W4 -> WindowChecks.logging(rig);
            case W5 -> WindowChecks.chunking(rig);
            case W6 -> WindowChecks.outsideSession(rig);
            case W7 -> WindowChecks.incrementalLoad(rig);
            case W8 -> WindowChecks.reinit(rig);
            case W9 -> WindowChecks.prediction(rig);
            case V1 -> V2Checks.walks(rig, false);
            case V2 -> V2Checks.walks(rig, true);
            case V3 -> V2Checks.failingArcs(rig);
        };
    }

    private static long micros(long start) {
        return (System.nanoTime() - start) / 1000;
    }
}
