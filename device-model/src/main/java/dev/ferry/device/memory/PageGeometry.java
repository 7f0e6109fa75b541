package dev.ferry.device.memory;

/** Page geometry shared by guest memory, device memory and the migration streams (M1). */
public final class PageGeometry {
    /** Guest and device pages are 4 KiB. */
    public static final int PAGE_SIZE = 4096;
    public static final int PAGE_SHIFT = 12;

    private PageGeometry() {
    }

    /** Number of pages in {@code bytes}, which must be a multiple of the page size. */
    public static long count(long bytes) {
        requireAligned(bytes, "size");
        return bytes >>> PAGE_SHIFT;
    }

    public static void requireAligned(long value, String what) {
        if (value < 0 || (value & (PAGE_SIZE - 1)) != 0) {
            throw new IllegalArgumentException(what + " must be a non-negative multiple of " + PAGE_SIZE + ": " + value);
        }
    }
}
