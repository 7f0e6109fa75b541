package dev.ferry.protocol.transfer;

/** The pages of one iteration, in ascending order. */
@FunctionalInterface
public interface PageSet {
    /** The first page at or after {@code from}, or -1 when there is none. */
    long next(long from);

    /** Every page in {@code [0, pages)}. */
    static PageSet all(long pages) {
        return from -> from < pages ? Math.max(from, 0) : -1;
    }
}
