package dev.ferry.protocol;

/**
 * Which data channel carries which page: runs of {@value #RUN_PAGES} pages go round-robin over the
 * channels, and a page always travels on the same channel. TCP keeps each channel in order, so a
 * page sent again in a later iteration always arrives after, and replaces, its older copy, without
 * any cross-channel barrier. A receiver checks every page against this rule.
 *
 * @param pages        pages in the VM's memory: every index must be below it
 * @param channels     data channels in the session
 * @param channelIndex the channel this routing checks, or -1 on the sending side
 */
public record PageRouting(long pages, int channels, int channelIndex) {
    public static final int RUN_PAGES = 64;

    public static int channelOf(long page, int channels) {
        return (int) ((page / RUN_PAGES) % channels);
    }

    public boolean accepts(long page) {
        return page >= 0 && page < pages && channelOf(page, channels) == channelIndex;
    }

    /** Receives one stretch of consecutive pages. */
    @FunctionalInterface
    public interface Stretch {
        void pages(long first, long count);
    }

    /** Each stretch of {@code [first, first + count)} that {@code channel} of {@code channels} carries, in order. */
    public static void forEachStretch(long first, long count, int channel, int channels, Stretch action) {
        if (count <= 0) {
            return;
        }
        if (channels == 1) {
            action.pages(first, count);
            return;
        }
        long end = first + count;
        long run = first / RUN_PAGES;
        // The channel's first run at or after the run that holds first.
        run += Math.floorMod(channel - (int) (run % channels), channels);
        for (long from = Math.max(first, run * RUN_PAGES); from < end; run += channels, from = run * RUN_PAGES) {
            action.pages(from, Math.min(end, (run + 1) * RUN_PAGES) - from);
        }
    }

    /** How many pages of {@code [first, first + count)} {@code channel} of {@code channels} carries; in constant time. */
    public static long pagesOf(long first, long count, int channel, int channels) {
        return count <= 0 ? 0 : pagesBelow(first + count, channel, channels) - pagesBelow(first, channel, channels);
    }

    /** Pages of {@code [0, end)} that {@code channel} carries: whole rounds of the channels, then the last round's part. */
    private static long pagesBelow(long end, int channel, int channels) {
        long round = (long) RUN_PAGES * channels;
        long inLast = end % round - (long) channel * RUN_PAGES;
        return end / round * RUN_PAGES + Math.max(0, Math.min(RUN_PAGES, inLast));
    }
}
