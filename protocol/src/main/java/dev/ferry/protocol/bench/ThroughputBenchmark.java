package dev.ferry.protocol.bench;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PageRouting;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.FrameHandler;
import dev.ferry.protocol.net.ProtocolClient;
import dev.ferry.protocol.net.ProtocolConfig;
import dev.ferry.protocol.net.ProtocolServer;
import dev.ferry.protocol.net.SessionAcceptor;
import dev.ferry.protocol.net.Transport;
import dev.ferry.protocol.transfer.PagePlacement;
import dev.ferry.protocol.transfer.PageReceiver;
import dev.ferry.protocol.transfer.PageSender;
import dev.ferry.protocol.transfer.PageSet;
import dev.ferry.protocol.transfer.PageSource;
import dev.ferry.protocol.transfer.RateLimiter;
import io.netty.channel.EventLoopGroup;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * Loopback throughput of the protocol against a raw socket copy of the same bytes, measured in the
 * same run on the same machine. The raw copy is a plain blocking TCP transfer of the buffer over 1, 2
 * or 4 connections (like {@code iperf3 -P n}), each read straight into the target buffer: what the
 * kernel's loopback can do, the floor of any protocol's cost. The protocol run moves the same memory
 * as a full pass of pages (handshake, framing, CRC32C on both sides, routing checks, one copy into
 * the destination's memory) over as many data channels, sender and receiver in this process with
 * their own event loops; connection setup and handshakes are inside the measured time.
 *
 * <p>A last row moves every other page only, so that each page is a run of its own, as the dirty
 * pages of a last pass are: the protocol's rate for scattered pages against its rate for the same bytes
 * in runs, one channel, in the same run.
 *
 * <p>Usage: {@code ThroughputBenchmark [megabytes, default 1024] [rounds, default 3]}. Each
 * configuration runs {@code rounds} times after one warm-up; the best round is reported.
 */
public final class ThroughputBenchmark {
    private static final int PAGE = 4096;

    private ThroughputBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int megabytes = args.length > 0 ? Integer.parseInt(args[0]) : 1024;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        PrintStream out = System.out;
        ByteBuffer source = ByteBuffer.allocateDirect(megabytes << 20);
        ByteBuffer target = ByteBuffer.allocateDirect(megabytes << 20);
        RawTcp.fillRandom(source, 0x9E3779B97F4A7C15L);
        out.printf("Ferry protocol throughput over loopback: %d MiB of random pages, transport %s, %d cores, best of %d%n",
                megabytes, Transport.name(), Runtime.getRuntime().availableProcessors(), rounds);

        out.printf("  %-26s %12s %12s %10s%n", "", "raw TCP", "protocol", "protocol");
        out.printf("  %-26s %12s %12s %10s%n", "streams / data channels", "MiB/s", "MiB/s", "of raw");
        for (int channels : new int[] {1, 2, 4}) {
            double raw = best(rounds, () -> RawTcp.copy(source, target, channels));
            double rate = best(rounds, () -> protocol(source, target, channels));
            if (target.mismatch(source) != -1) {
                throw new IllegalStateException("the destination's memory differs from the source's");
            }
            out.printf("  %-26d %12.1f %12.1f %9.1f%%%n", channels, raw, rate, 100 * rate / raw);
        }
        long pages = source.capacity() / PAGE;
        PageSet everyOther = from -> {
            long page = (from + 1) / 2 * 2;
            return page < pages ? page : -1;
        };
        PageSet firstHalf = from -> from < pages / 2 ? from : -1;
        double runs = best(rounds, () -> protocol(source, target, 1, firstHalf, pages / 2));
        double scattered = best(rounds, () -> protocol(source, target, 1, everyOther, pages / 2));
        for (long page = 0; page < pages; page += 2) {
            if (target.slice((int) (page * PAGE), PAGE).mismatch(source.slice((int) (page * PAGE), PAGE)) != -1) {
                throw new IllegalStateException("scattered page " + page + " differs on the destination");
            }
        }
        out.printf("  %-26s %12s %12.1f %9.1f%% of the same bytes in runs (%.1f MiB/s)%n", "1, every other page", "",
                scattered, 100 * scattered / runs, runs);
    }

    @FunctionalInterface
    private interface Run {
        double mibPerSecond() throws Exception;
    }

    private static double best(int rounds, Run run) throws Exception {
        run.mibPerSecond();
        double best = 0;
        for (int i = 0; i < rounds; i++) {
            best = Math.max(best, run.mibPerSecond());
        }
        return best;
    }

    private static double protocol(ByteBuffer source, ByteBuffer target, int channels) throws Exception {
        long pages = source.capacity() / PAGE;
        return protocol(source, target, channels, PageSet.all(pages), pages);
    }

    /** A pass of {@code set} ({@code count} pages of {@code source}) into {@code target}; MiB/s of page bytes. */
    private static double protocol(ByteBuffer source, ByteBuffer target, int channels, PageSet set, long count) throws Exception {
        long pages = source.capacity() / PAGE;
        EventLoopGroup destinationLoops = Transport.newGroup(2, "bench-destination");
        EventLoopGroup sourceLoops = Transport.newGroup(2, "bench-source");
        ExecutorService senders = Executors.newFixedThreadPool(Math.max(1, channels - 1));
        List<PageReceiver> receivers = new CopyOnWriteArrayList<>();
        byte[] token = "bench".getBytes(StandardCharsets.UTF_8);
        SessionAcceptor acceptor = new SessionAcceptor() {
            @Override
            public FrameHandler acceptControl(FrameChannel channel) {
                return (ch, frame) -> io.netty.util.ReferenceCountUtil.release(frame);
            }

            @Override
            public FrameHandler acceptData(FrameChannel channel) throws ProtocolException {
                channel.setPageRouting(new PageRouting(pages, channels, channel.index()));
                // Page bytes go straight from the socket into the target, as on a destination.
                channel.setPagePlacement(new PagePlacement() {
                    @Override
                    public ByteBuffer target(long first, int count) {
                        return target.slice((int) (first * PAGE), count * PAGE);
                    }

                    @Override
                    public void placed(long first, int count) {
                    }
                });
                PageReceiver receiver = new PageReceiver(new Frame.Pages.PageVisitor() {
                    @Override
                    public void zero(long index) {
                        target.slice((int) (index * PAGE), PAGE).put(ByteBuffer.allocate(PAGE));
                    }

                    @Override
                    public void intact(long index, ByteBuffer data) {
                        if (data != null) {
                            target.slice((int) (index * PAGE), PAGE).put(data);
                        }
                    }

                    @Override
                    public void torn(long index) {
                        throw new IllegalStateException("page " + index + " of unchanging memory arrived torn");
                    }
                });
                receivers.add(receiver);
                return receiver;
            }
        };
        try (ProtocolServer server = new ProtocolServer(ProtocolConfig.of(token, null), destinationLoops, acceptor)) {
            InetSocketAddress address = server.bind(new InetSocketAddress("127.0.0.1", 0));
            ProtocolClient client = new ProtocolClient(ProtocolConfig.of(token, null), sourceLoops);
            SessionId session = SessionId.random();
            long start = System.nanoTime();
            FrameChannel control = client.connect(address, session, ChannelRole.CONTROL, 0, null).get(30, TimeUnit.SECONDS);
            control.send(new Frame.VmDescription(source.capacity(), PAGE, channels, new byte[0]));
            List<FrameChannel> data = new ArrayList<>();
            for (int c = 0; c < channels; c++) {
                data.add(client.connect(address, session, ChannelRole.DATA, c, null).get(30, TimeUnit.SECONDS));
            }
            PageSender sender = new PageSender(data, senders, RateLimiter.unlimited());
            sender.send(0, set, new PageSource() {
                @Override
                public ByteBuffer page(long index) {
                    return source.slice((int) (index * PAGE), PAGE);
                }

                @Override
                public ByteBuffer run(long first, int count) {
                    return source.slice((int) (first * PAGE), count * PAGE);
                }
            });
            sender.finish();
            for (PageReceiver receiver : receivers) {
                receiver.ended().get(10, TimeUnit.MINUTES);
            }
            long elapsed = System.nanoTime() - start;
            control.close().sync();
            return rate(count * PAGE, elapsed);
        } finally {
            senders.shutdownNow();
            sourceLoops.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
            destinationLoops.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }

    private static double rate(long bytes, long nanos) {
        return bytes / (1024.0 * 1024.0) / (nanos / 1e9);
    }
}
