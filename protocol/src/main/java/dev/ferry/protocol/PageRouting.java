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
}
