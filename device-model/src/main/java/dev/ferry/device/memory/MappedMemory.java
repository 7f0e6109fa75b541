package dev.ferry.device.memory;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Guest memory mapped straight from the kernel, as QEMU maps guest RAM: anonymous private mappings
 * aligned to 2 MiB and marked {@code MADV_HUGEPAGE}, so that where transparent huge pages are
 * {@code madvise} or {@code always} the kernel backs them 2 MiB at a time.
 *
 * <p>Why it matters: a first touch of fresh memory is a page fault, one per 4 KiB page without huge
 * pages. On a virtual machine whose hypervisor shadows the guest's page tables each one is expensive: on
 * the 2-core machine the benchmarks run on, 1 GiB of 4 KiB first touches took 5.9 s, against 0.12 s in
 * huge pages (memory the hypervisor had backed before). A mapping also reads as zeros until written and
 * costs nothing until then, so nothing zeroes it up front, where {@code allocateDirect} writes every byte.
 *
 * <p>Freed memory is not unmapped. Its pages go back to the kernel ({@code MADV_DONTNEED}, after which
 * the range reads as zeros) and the address range is kept for the next mapping of the same size. A
 * view of freed memory used by mistake then reads zeros or a later owner's bytes, as freed
 * {@code malloc} memory would, instead of faulting the whole daemon on an unmapped address. Address
 * space, not memory, grows: for each size, to the most of it mapped at once (guest chunks are one
 * size; device memory adds one per size a device asks for).
 *
 * <p>Reached through JNA, which the device model takes as an optional dependency: without it, or off
 * 64-bit Linux, {@link #find} says so and guest memory comes from the JDK's direct buffers.
 */
final class MappedMemory {
    /** The huge page size on x86-64 and arm64 with 4 KiB pages; mappings are multiples of it. */
    static final int HUGE_PAGE = 2 << 20;

    // <sys/mman.h>, the same on x86-64 and arm64.
    private static final int PROT_READ = 0x1;
    private static final int PROT_WRITE = 0x2;
    private static final int MAP_PRIVATE = 0x02;
    private static final int MAP_ANONYMOUS = 0x20;
    private static final int MADV_DONTNEED = 4;
    private static final int MADV_HUGEPAGE = 14;

    /** The C library's calls, as JNA binds them; each throws with errno when it fails. */
    interface LibC extends Library {
        Pointer mmap(Pointer address, long length, int protection, int flags, int fd, long offset) throws LastErrorException;

        int munmap(Pointer address, long length) throws LastErrorException;

        int madvise(Pointer address, long length, int advice) throws LastErrorException;
    }

    private final LibC libc;
    // Guarded by this: where each live buffer starts, and freed ranges by length.
    private final Map<ByteBuffer, Long> live = new IdentityHashMap<>();
    private final Map<Integer, ArrayDeque<Long>> freed = new HashMap<>();
    private long mappedBytes;
    private long liveBytes;

    private MappedMemory(LibC libc) {
        this.libc = libc;
    }

    /**
     * The mapped memory of this process, or null where it cannot be had: not 64-bit Linux, or JNA
     * missing or unable to load its native part. Throws nothing else; a {@link LinkageError} from a class
     * path without JNA is the caller's to catch, since it comes as this class is linked.
     */
    static MappedMemory find() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        if (!os.equals("linux") || !(arch.equals("amd64") || arch.equals("x86_64") || arch.equals("aarch64"))) {
            return null;
        }
        try {
            MappedMemory memory = new MappedMemory(Native.load("c", LibC.class));
            // One mapping made and freed: what would fail later fails here, and the daemon falls back.
            memory.free(memory.map(HUGE_PAGE));
            return memory;
        } catch (RuntimeException | UnsatisfiedLinkError | OutOfMemoryError e) {
            return null;
        }
    }

    /** A zeroed, big-endian buffer of {@code bytes}, a multiple of {@link #HUGE_PAGE}, starting on a huge page. */
    ByteBuffer map(int bytes) {
        if (bytes <= 0 || bytes % HUGE_PAGE != 0) {
            throw new IllegalArgumentException(bytes + " bytes: mappings are whole huge pages of " + HUGE_PAGE);
        }
        Long start;
        synchronized (this) {
            ArrayDeque<Long> ranges = freed.get(bytes);
            start = ranges == null ? null : ranges.pollFirst();
        }
        if (start == null) {
            start = mapAligned(bytes);
        }
        ByteBuffer buffer = new Pointer(start).getByteBuffer(0, bytes).order(ByteOrder.BIG_ENDIAN);
        synchronized (this) {
            live.put(buffer, start);
            liveBytes += bytes;
        }
        return buffer;
    }

    /**
     * Gives a buffer's pages back to the kernel and keeps its range for a later {@link #map}; false,
     * doing nothing, for a buffer this did not map.
     */
    boolean free(ByteBuffer buffer) {
        Long start;
        int bytes = buffer.capacity();
        synchronized (this) {
            start = live.remove(buffer);
            if (start == null) {
                return false;
            }
            liveBytes -= bytes;
        }
        try {
            libc.madvise(new Pointer(start), bytes, MADV_DONTNEED);
        } catch (LastErrorException e) {
            // Not expected of a range this mapped; the range is then unmapped, not kept with its pages.
            unmap(start, bytes);
            synchronized (this) {
                mappedBytes -= bytes;
            }
            return true;
        }
        synchronized (this) {
            freed.computeIfAbsent(bytes, b -> new ArrayDeque<>()).addLast(start);
        }
        return true;
    }

    /** Bytes of the buffers mapped and not freed: memory that is, or may become, resident. */
    synchronized long liveBytes() {
        return liveBytes;
    }

    /** Bytes of address space mapped so far: live buffers and kept ranges. */
    synchronized long mappedBytes() {
        return mappedBytes;
    }

    /**
     * One huge page more than asked is mapped and the ends that are not needed are unmapped, so the
     * range starts on a huge page: recent kernels align large anonymous mappings themselves, but only for
     * lengths that are multiples of the huge page, and older ones not at all.
     */
    private long mapAligned(int bytes) {
        long length = (long) bytes + HUGE_PAGE;
        long raw;
        try {
            raw = Pointer.nativeValue(libc.mmap(null, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        } catch (LastErrorException e) {
            throw new OutOfMemoryError("mapping " + bytes + " bytes of guest memory failed: errno " + e.getErrorCode());
        }
        long start = (raw + HUGE_PAGE - 1) & -HUGE_PAGE;
        long head = start - raw;
        if (head > 0) {
            unmap(raw, head);
        }
        long tail = length - head - bytes;
        if (tail > 0) {
            unmap(start + bytes, tail);
        }
        try {
            libc.madvise(new Pointer(start), bytes, MADV_HUGEPAGE);
        } catch (LastErrorException e) {
            // A kernel without transparent huge pages (EINVAL): the mapping still serves, in 4 KiB pages.
        }
        synchronized (this) {
            mappedBytes += bytes;
        }
        return start;
    }

    private void unmap(long start, long bytes) {
        try {
            libc.munmap(new Pointer(start), bytes);
        } catch (LastErrorException e) {
            // Only on a bad range, which this never passes; the range stays mapped, unused.
        }
    }
}
