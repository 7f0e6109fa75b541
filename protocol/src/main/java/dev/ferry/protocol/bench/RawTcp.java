package dev.ferry.protocol.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The baseline of every throughput figure: the same bytes over plain TCP on loopback, like
 * {@code iperf3 -P streams}, each stream read straight into its share of the target buffer.
 */
public final class RawTcp {
    private RawTcp() {
    }

    /** How the sending side of a copy hands its bytes to the kernel. */
    public enum Sender {
        /** {@code write} from a direct buffer: the kernel copies the bytes in from user memory. */
        WRITE,
        /** {@code sendfile} ({@link FileChannel#transferTo}) from a file holding the same bytes, such as one in {@code /dev/shm}. */
        SENDFILE
    }

    /** One copy: its wall time, and the CPU time of all its sending threads and of all its receiving threads. */
    public record Timed(long wallNanos, long senderCpuNanos, long receiverCpuNanos) {
        public double mibPerSecond(long bytes) {
            return bytes / (1024.0 * 1024.0) / (wallNanos / 1e9);
        }
    }

    /** Copies {@code source} into {@code target} over {@code streams} connections; returns MiB/s. */
    public static double copy(ByteBuffer source, ByteBuffer target, int streams) throws Exception {
        int share = source.capacity() / streams;
        return timedCopy(source, null, target, streams, Sender.WRITE).mibPerSecond((long) share * streams);
    }

    /**
     * Copies {@code source} (or, with {@link Sender#SENDFILE}, {@code file}, which holds the same bytes) into
     * {@code target} over {@code streams} connections, 256 KiB at a time as frames would go.
     */
    public static Timed timedCopy(ByteBuffer source, FileChannel file, ByteBuffer target, int streams, Sender sender)
            throws Exception {
        if (sender == Sender.SENDFILE && file == null) {
            throw new IllegalArgumentException("sendfile needs the file");
        }
        int share = source.capacity() / streams;
        ThreadMXBean cpu = ManagementFactory.getThreadMXBean();
        AtomicLong senderCpu = new AtomicLong();
        AtomicLong receiverCpu = new AtomicLong();
        // A thread for every end of every stream: they block on sockets, so a shared pool could starve.
        ExecutorService threads = Executors.newFixedThreadPool(2 * streams);
        List<SocketChannel> ins = new ArrayList<>();
        List<SocketChannel> outs = new ArrayList<>();
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress("127.0.0.1", 0));
            // Connected one at a time, so that stream s's receiver holds stream s's connection and fills its share.
            for (int s = 0; s < streams; s++) {
                outs.add(SocketChannel.open(server.getLocalAddress()));
                ins.add(server.accept());
            }
            List<CompletableFuture<Void>> done = new ArrayList<>();
            long start = System.nanoTime();
            for (int s = 0; s < streams; s++) {
                int from = s * share;
                SocketChannel in = ins.get(s);
                SocketChannel outgoing = outs.get(s);
                done.add(CompletableFuture.runAsync(() -> {
                    long cpuStart = cpu.getCurrentThreadCpuTime();
                    try (in) {
                        ByteBuffer into = target.slice(from, share);
                        while (into.hasRemaining() && in.read(into) >= 0) {
                            // Straight into the target, as a destination's memory would be filled.
                        }
                    } catch (IOException e) {
                        throw new IllegalStateException(e);
                    }
                    receiverCpu.addAndGet(cpu.getCurrentThreadCpuTime() - cpuStart);
                }, threads));
                done.add(CompletableFuture.runAsync(() -> {
                    long cpuStart = cpu.getCurrentThreadCpuTime();
                    try (outgoing) {
                        for (int at = 0; at < share; ) {
                            int chunk = Math.min(share - at, 256 << 10);
                            if (sender == Sender.WRITE) {
                                ByteBuffer out = source.slice(from + at, chunk);
                                while (out.hasRemaining()) {
                                    outgoing.write(out);
                                }
                                at += chunk;
                            } else {
                                long sent = file.transferTo(from + at, chunk, outgoing);
                                if (sent <= 0) {
                                    throw new IOException("sendfile moved nothing at byte " + (from + at) + " of the file");
                                }
                                at += (int) sent;
                            }
                        }
                    } catch (IOException e) {
                        throw new IllegalStateException(e);
                    }
                    senderCpu.addAndGet(cpu.getCurrentThreadCpuTime() - cpuStart);
                }, threads));
            }
            for (CompletableFuture<Void> f : done) {
                f.get(10, TimeUnit.MINUTES);
            }
            return new Timed(System.nanoTime() - start, senderCpu.get(), receiverCpu.get());
        } finally {
            threads.shutdownNow();
            for (SocketChannel channel : ins) {
                channel.close();
            }
            for (SocketChannel channel : outs) {
                channel.close();
            }
        }
    }

    /** Fills a buffer with pseudo-random bytes that neither compress nor repeat. */
    public static void fillRandom(ByteBuffer memory, long seed) {
        long x = seed | 1;
        for (int at = 0; at + 8 <= memory.capacity(); at += 8) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            memory.putLong(at, x);
        }
    }
}
