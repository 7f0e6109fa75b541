package dev.ferry.device.conformance;

/** What the kit found for one rule and one kind. */
public sealed interface Verdict {
    Rule rule();

    String kind();

    /** Microseconds the check took. */
    long micros();

    /** The rule held in every case the kit tried; {@code checked} says what that was. */
    record Held(Rule rule, String kind, String checked, long micros) implements Verdict {
    }

    /**
     * The first counter-example: what went wrong, and the exact sequence of writes to the device (state writes,
     * window reads and writes, resets, MMIO) that shows it.
     */
    record Violated(Rule rule, String kind, String problem, String writes, long micros) implements Verdict {
    }

    /** The rule cannot apply to this kind (a kind that never re-initialises has no W8 to show). */
    record Skipped(Rule rule, String kind, String reason, long micros) implements Verdict {
    }
}
