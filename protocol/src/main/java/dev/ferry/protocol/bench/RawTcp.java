package dev.ferry.protocol.bench;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * The baseline of every throughput figure: the same bytes over plain TCP on loopback, like
 * {@code iperf3 -P streams}, each stream read straight into its share of the target buffer.
 */
public final class RawTcp {
    private RawTcp() {
    }

    /** Copies {@code source} into {@code target} over {@code streams} connections; returns MiB/s. */
    public static double copy(ByteBuffer source, ByteBuffer target, int streams) throws Exception {
        int share = source.capacity() / streams;
        // A thread for every end of every stream: they block on sockets, so a shared pool could starve.
        ExecutorService threads = Executors.newFixedThreadPool(2 * streams);
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress("127.0.0.1", 0));
            List<CompletableFuture<Void>> done = new ArrayList<>();
            long start = System.nanoTime();
            for (int s = 0; s < streams; s++) {
                int from = s * share;
                done.add(CompletableFuture.runAsync(() -> {
                    try (SocketChannel in = server.accept()) {
                        ByteBuffer into = target.slice(from, share);
                        while (into.hasRemaining() && in.read(into) >= 0) {
                            // Straight into the target, as a destination's memory would be filled.
                        }
                    } catch (IOException e) {
                        throw new IllegalStateException(e);
                    }
                }, threads));
                done.add(CompletableFuture.runAsync(() -> {
                    try (SocketChannel outgoing = SocketChannel.open(server.getLocalAddress())) {
                        ByteBuffer out = source.slice(from, share);
                        while (out.hasRemaining()) {
                            int chunk = Math.min(out.remaining(), 256 << 10);
                            outgoing.write(out.slice(out.position(), chunk));
                            out.position(out.position() + chunk);
                        }
                    } catch (IOException e) {
                        throw new IllegalStateException(e);
                    }
                }, threads));
            }
            for (CompletableFuture<Void> f : done) {
                f.get(10, TimeUnit.MINUTES);
            }
            long elapsed = System.nanoTime() - start;
            return (long) share * streams / (1024.0 * 1024.0) / (elapsed / 1e9);
        } finally {
            threads.shutdownNow();
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
