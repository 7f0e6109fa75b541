package dev.ferry.device.conformance;

/** A counter-example, thrown by a check: the problem and the writes that led to it. */
final class Violation extends RuntimeException {
    private final String writes;

    Violation(String problem, String writes) {
        super(problem, null, false, false);
        this.writes = writes;
    }

    String writes() {
        return writes;
    }
}
