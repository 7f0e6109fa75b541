package dev.ferry.device.memory;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One dirty log: a bit per page, set by writers, read and cleared atomically by the migration (M1).
 *
 * <p>Writers must mark a page <em>after</em> writing it. The reader clears a word with an atomic
 * exchange and then reads the pages whose bits it took: a write that lands after the exchange sets
 * its bit again and the page is sent once more, so no change is ever lost. Marking before the write
 * would let the exchange run between mark and write and lose that write.
 *
 * <p>Marking is a no-op while logging is off, as with KVM's dirty logging or VFIO's DMA logging.
 */
public final class DirtyBitmap {
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

    private final long pages;
    private final long[] words;
    private volatile boolean logging;

    public DirtyBitmap(long pages) {
        if (pages < 0 || pages > (long) Integer.MAX_VALUE * 64) {
            throw new IllegalArgumentException("page count out of range: " + pages);
        }
        this.pages = pages;
        this.words = new long[(int) ((pages + 63) >>> 6)];
    }

    public long pages() {
        return pages;
    }

    public boolean isLogging() {
        return logging;
    }

    /** Starts logging with an empty log. */
    public void start() {
        clear();
        logging = true;
    }

    /** Stops logging; what was logged stays readable. */
    public void stop() {
        logging = false;
    }

    /** Marks one page dirty if logging is on. Call after the write to the page completed. */
    public void mark(long page) {
        if (!logging) {
            return;
        }
        checkPage(page);
        WORDS.getAndBitwiseOr(words, (int) (page >>> 6), 1L << (page & 63));
    }

    /** Marks pages {@code [first, first + count)} dirty if logging is on. */
    public void markRange(long first, long count) {
        if (!logging || count == 0) {
            return;
        }
        updateRange(first, count, true);
    }

    /** Clears pages {@code [first, first + count)}, a word at a time: its cost is the range's, not the bitmap's. */
    public void clearRange(long first, long count) {
        if (count == 0) {
            return;
        }
        updateRange(first, count, false);
    }

    /** Sets ({@code set}) or clears pages {@code [first, first + count)}, one atomic operation per word touched. */
    private void updateRange(long first, long count, boolean set) {
        checkPage(first);
        checkPage(first + count - 1);
        long page = first;
        long end = first + count;
        while (page < end) {
            int word = (int) (page >>> 6);
            int bit = (int) (page & 63);
            int span = (int) Math.min(64 - bit, end - page);
            long mask = span == 64 ? -1L : ((1L << span) - 1) << bit;
            if (set) {
                WORDS.getAndBitwiseOr(words, word, mask);
            } else {
                WORDS.getAndBitwiseAnd(words, word, ~mask);
            }
            page += span;
        }
    }

    /**
     * Atomically takes every set bit, word by word, and returns them as a snapshot. Bits set
     * concurrently either make it into this snapshot or stay set for the next one.
     */
    public Snapshot readAndClear() {
        long[] taken = new long[words.length];
        long count = 0;
        for (int i = 0; i < words.length; i++) {
            if ((long) WORDS.getVolatile(words, i) != 0) {
                long w = (long) WORDS.getAndSet(words, i, 0L);
                taken[i] = w;
                count += Long.bitCount(w);
            }
        }
        return new Snapshot(taken, count);
    }

    /** Number of dirty pages now, without clearing. */
    public long count() {
        long count = 0;
        for (int i = 0; i < words.length; i++) {
            count += Long.bitCount((long) WORDS.getVolatile(words, i));
        }
        return count;
    }

    /** Number of pages dirty in this log or in {@code other} (of the same size), without clearing. */
    public long countUnion(DirtyBitmap other) {
        if (other.pages != pages) {
            throw new IllegalArgumentException("dirty logs of different sizes");
        }
        long count = 0;
        for (int i = 0; i < words.length; i++) {
            count += Long.bitCount((long) WORDS.getVolatile(words, i) | (long) WORDS.getVolatile(other.words, i));
        }
        return count;
    }

    /** Number of dirty pages below {@code limit}, without clearing. */
    public long countBelow(long limit) {
        long count = 0;
        int full = (int) Math.min(words.length, limit >>> 6);
        for (int i = 0; i < full; i++) {
            count += Long.bitCount((long) WORDS.getVolatile(words, i));
        }
        int rest = (int) (limit & 63);
        if (rest != 0 && full < words.length) {
            count += Long.bitCount((long) WORDS.getVolatile(words, full) & ((1L << rest) - 1));
        }
        return count;
    }

    /** Whether the page is marked, without clearing. */
    public boolean isDirty(long page) {
        checkPage(page);
        return ((long) WORDS.getVolatile(words, (int) (page >>> 6)) & (1L << (page & 63))) != 0;
    }

    /** Atomically clears one page's bit and says whether it was set. */
    public boolean testAndClear(long page) {
        checkPage(page);
        long mask = 1L << (page & 63);
        return ((long) WORDS.getAndBitwiseAnd(words, (int) (page >>> 6), ~mask) & mask) != 0;
    }

    /** First dirty page at or after {@code from}, or -1. Does not clear. */
    public long nextDirty(long from) {
        if (from >= pages) {
            return -1;
        }
        int word = (int) (from >>> 6);
        long w = (long) WORDS.getVolatile(words, word) & (-1L << (from & 63));
        while (true) {
            if (w != 0) {
                long page = ((long) word << 6) + Long.numberOfTrailingZeros(w);
                return page < pages ? page : -1;
            }
            if (++word >= words.length) {
                return -1;
            }
            w = (long) WORDS.getVolatile(words, word);
        }
    }

    /** Clears every bit. */
    public void clear() {
        for (int i = 0; i < words.length; i++) {
            WORDS.setVolatile(words, i, 0L);
        }
    }

    private void checkPage(long page) {
        if (page < 0 || page >= pages) {
            throw new IndexOutOfBoundsException("page " + page + " outside [0, " + pages + ")");
        }
    }

    /** Pages taken by one {@link #readAndClear()}, in ascending order. */
    public static final class Snapshot {
        private final long[] words;
        private final long count;

        Snapshot(long[] words, long count) {
            this.words = words;
            this.count = count;
        }

        public long count() {
            return count;
        }

        public boolean isEmpty() {
            return count == 0;
        }

        public boolean contains(long page) {
            int word = (int) (page >>> 6);
            return word < words.length && (words[word] & (1L << (page & 63))) != 0;
        }

        /** First page in the snapshot at or after {@code from}, or -1. */
        public long next(long from) {
            int word = (int) (from >>> 6);
            if (word >= words.length) {
                return -1;
            }
            long w = words[word] & (-1L << (from & 63));
            while (w == 0) {
                if (++word >= words.length) {
                    return -1;
                }
                w = words[word];
            }
            return ((long) word << 6) + Long.numberOfTrailingZeros(w);
        }

        /** Adds the pages of {@code other} to this snapshot's set (used to merge the two logs). */
        public Snapshot union(Snapshot other) {
            if (other.words.length != words.length) {
                throw new IllegalArgumentException("snapshots of different sizes");
            }
            long[] merged = new long[words.length];
            long merge = 0;
            for (int i = 0; i < words.length; i++) {
                merged[i] = words[i] | other.words[i];
                merge += Long.bitCount(merged[i]);
            }
            return new Snapshot(merged, merge);
        }
    }
}
