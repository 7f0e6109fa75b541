package dev.ferry.protocol;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Locale;

/**
 * {@code readv(2)} on a connected socket's descriptor: the page bytes of one PAGES frame read into all of
 * their places in one system call, however scattered the pages are.
 *
 * <p>Netty reads into one buffer at a time, so a frame of 64 pages that lie apart (a last pass's dirty
 * pages) took 64 reads of 4 KiB, each a system call, a trip through the channel's pipeline and the
 * decoder's bookkeeping. Measured in the destination's event loop during stop-and-copy, the calls
 * themselves, beyond their copies, were about a third of its time. One {@code readv} per frame keeps
 * the one kernel copy per page and makes the rest once per frame.
 *
 * <p>Only where it can be had: 64-bit Linux with JNA (ferryd has it; a build of the protocol alone may
 * not), and only on a channel whose descriptor Netty exposes (its epoll transport). Everywhere else the
 * decoder reads run by run as before. The descriptor is non-blocking: a call returns what the socket
 * holds, or nothing.
 */
final class SocketScatterRead {
    /** One {@code struct iovec} on 64-bit Linux: a base address and a length, 8 bytes each. */
    private static final int IOVEC_BYTES = 16;
    private static final int EAGAIN = 11;
    private static final int EINTR = 4;

    private static final boolean AVAILABLE = register();

    /** The iovecs of one call, in native memory owned by this reader. */
    private final ByteBuffer iovecs;
    private final long iovecsAddress;
    private final int fd;
    private final int maxBuffers;

    private SocketScatterRead(int fd, int maxBuffers) {
        this.fd = fd;
        this.maxBuffers = maxBuffers;
        this.iovecs = ByteBuffer.allocateDirect(maxBuffers * IOVEC_BYTES).order(ByteOrder.nativeOrder());
        this.iovecsAddress = Pointer.nativeValue(Native.getDirectBufferPointer(iovecs));
    }

    /** A reader of {@code fd} taking up to {@code maxBuffers} places a call, or null where {@code readv} cannot be had. */
    static SocketScatterRead of(int fd, int maxBuffers) {
        return AVAILABLE && fd >= 0 ? new SocketScatterRead(fd, maxBuffers) : null;
    }

    private static boolean register() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        if (!os.equals("linux") || !(arch.equals("amd64") || arch.equals("x86_64") || arch.equals("aarch64"))) {
            return false;
        }
        try {
            Native.register(SocketScatterRead.class, "c");
            return true;
        } catch (LinkageError | RuntimeException e) {
            // No JNA on the class path, or its native part would not load: reads go run by run.
            return false;
        }
    }

    private static native long readv(int fd, long iov, int iovcnt) throws LastErrorException;

    /**
     * Reads into {@code count} places given as native addresses and lengths, in order, each filled before the
     * next; returns the bytes read: 0 when the socket holds nothing now (or a signal came first: the channel's
     * own read goes on), -1 at its end or on an error (the channel's own next read meets the same and ends the
     * channel as it would have). One call, never a retry: nothing here waits.
     */
    long read(long[] addresses, int[] lengths, int count) {
        if (count > maxBuffers) {
            throw new IllegalArgumentException(count + " places, at most " + maxBuffers);
        }
        for (int i = 0; i < count; i++) {
            iovecs.putLong(i * IOVEC_BYTES, addresses[i]);
            iovecs.putLong(i * IOVEC_BYTES + 8, lengths[i]);
        }
        try {
            long n = readv(fd, iovecsAddress, count);
            return n == 0 ? -1 : n;
        } catch (LastErrorException e) {
            return e.getErrorCode() == EAGAIN || e.getErrorCode() == EINTR ? 0 : -1;
        }
    }

    /** The native address of a direct buffer's first byte (its position 0). */
    static long address(ByteBuffer direct) {
        return Pointer.nativeValue(Native.getDirectBufferPointer(direct));
    }
}
