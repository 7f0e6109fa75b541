package dev.ferry.orchestrator.faults;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A TCP proxy on 127.0.0.1 between a source and a destination's migration listener, which damages
 * one channel on purpose: cut, stall (one direction or both), corrupt a byte, or truncate, at byte
 * N of a direction of a channel of a role, or at the first frame of a given type. Faults are real:
 * a stall stops reading, so TCP flow control pushes back on the sender exactly as a peer that stopped
 * reading would; a cut closes both sockets.
 *
 * <p>It reads the protocol only as far as it must: the role and channel index from each connection's
 * HELLO, and frame boundaries (the 16-byte header's length and type) to find a frame type. It does
 * not work behind TLS.
 */
public final class FaultProxy implements AutoCloseable {
    /** Which way bytes flow. */
    public enum Direction { TO_DESTINATION, TO_SOURCE }

    /** What to do. */
    public enum Action {
        /** Close both sockets at once. */
        CUT,
        /** Stop forwarding in the rule's direction: the sender's writes back up. */
        STALL,
        /** Stop forwarding both ways: the channel goes silent and stops reading. */
        STALL_BOTH,
        /** Flip the bits of one byte and go on. */
        CORRUPT,
        /** Forward up to the point, then close the socket to the receiver in that direction only. */
        TRUNCATE,
        /**
         * From the point on, every byte in the rule's direction arrives the rule's delay late, however many are
         * in flight: a long link. No other rule applies in that direction after it.
         */
        DELAY
    }

    /** The channel a rule applies to: its role (1 control, 2 data, as HELLO carries it) and index. */
    public record Channel(int role, int index) {
        public static final Channel CONTROL = new Channel(1, 0);

        public static Channel data(int index) {
            return new Channel(2, index);
        }
    }

    /**
     * A fault: on {@code channel}, in {@code direction}, at byte {@code atByte} (counted from the
     * connection's first byte that way) or, when {@code frameType} is not negative, at the first byte
     * of the first frame of that type (plus {@code atByte} into it).
     */
    public record Rule(Channel channel, Direction direction, Action action, long atByte, int frameType, Duration delay) {
        public static Rule atByte(Channel channel, Direction direction, Action action, long atByte) {
            return new Rule(channel, direction, action, atByte, -1, Duration.ZERO);
        }

        public static Rule atFrame(Channel channel, Direction direction, Action action, int frameType, long intoFrame) {
            return new Rule(channel, direction, action, intoFrame, frameType, Duration.ZERO);
        }

        /** Every byte on {@code channel} in {@code direction}, from its first, arrives {@code delay} late. */
        public static Rule delay(Channel channel, Direction direction, Duration delay) {
            return new Rule(channel, direction, Action.DELAY, 0, -1, delay);
        }
    }

    private static final int HEADER = 16;
    private static final int HELLO_ROLE = HEADER + 12;
    private static final int HELLO_INDEX = HEADER + 13;

    private final InetSocketAddress target;
    private final ServerSocket listener;
    private final List<Rule> rules = new CopyOnWriteArrayList<>();
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private final CountDownLatch fired = new CountDownLatch(1);
    /** Stalled pumps wait on this; closing the proxy ends them. */
    private final CountDownLatch shut = new CountDownLatch(1);
    private final AtomicInteger connections = new AtomicInteger();
    private volatile boolean closed;

    public FaultProxy(InetSocketAddress target) throws IOException {
        this.target = target;
        this.listener = new ServerSocket(0, 64, InetAddress.getLoopbackAddress());
        Thread accept = new Thread(this::accept, "fault-proxy-accept");
        accept.setDaemon(true);
        accept.start();
    }

    /** Where sources connect: HOST:PORT. */
    public String address() {
        return "127.0.0.1:" + listener.getLocalPort();
    }

    /** Arms a fault for connections and bytes from now on. */
    public FaultProxy add(Rule rule) {
        rules.add(rule);
        return this;
    }

    /** Waits until a fault has been applied. */
    public boolean awaitFired(long timeout, TimeUnit unit) throws InterruptedException {
        return fired.await(timeout, unit);
    }

    /** Connections accepted so far. */
    public int connections() {
        return connections.get();
    }

    @Override
    public void close() {
        closed = true;
        shut.countDown();
        closeQuietly(listener);
        sockets.forEach(FaultProxy::closeQuietly);
    }

    private void accept() {
        while (!closed) {
            try {
                Socket source = listener.accept();
                connections.incrementAndGet();
                Socket destination = new Socket();
                destination.connect(target, 5_000);
                source.setTcpNoDelay(true);
                destination.setTcpNoDelay(true);
                sockets.add(source);
                sockets.add(destination);
                Connection connection = new Connection(source, destination);
                start(() -> connection.pump(source, destination, Direction.TO_DESTINATION));
                start(() -> connection.pump(destination, source, Direction.TO_SOURCE));
            } catch (IOException e) {
                if (!closed) {
                    continue;
                }
                return;
            }
        }
    }

    private static void start(Runnable pump) {
        Thread thread = new Thread(pump, "fault-proxy-pump");
        thread.setDaemon(true);
        thread.start();
    }

    /** One proxied connection: its channel, once HELLO told it, and the state of its two directions. */
    private final class Connection {
        private final Socket source;
        private final Socket destination;
        private volatile Channel channel;
        private final CountDownLatch identified = new CountDownLatch(1);
        private volatile boolean bothStalled;

        Connection(Socket source, Socket destination) {
            this.source = source;
            this.destination = destination;
        }

        void pump(Socket from, Socket to, Direction direction) {
            byte[] buffer = new byte[64 * 1024];
            byte[] hello = new byte[HELLO_INDEX + 1];
            int helloBytes = 0;
            long offset = 0;
            FrameCursor frames = new FrameCursor();
            Rule done = null;
            try {
                InputStream in = from.getInputStream();
                OutputStream out = to.getOutputStream();
                if (direction == Direction.TO_SOURCE) {
                    // The destination speaks second; the channel is known once the source's HELLO passed.
                    identified.await(10, TimeUnit.SECONDS);
                }
                while (true) {
                    if (bothStalled) {
                        shut.await();
                        return;
                    }
                    int n = in.read(buffer);
                    if (n < 0) {
                        to.shutdownOutput();
                        return;
                    }
                    int start = 0;
                    if (direction == Direction.TO_DESTINATION && channel == null) {
                        int take = Math.min(n, hello.length - helloBytes);
                        System.arraycopy(buffer, 0, hello, helloBytes, take);
                        helloBytes += take;
                        if (helloBytes == hello.length) {
                            channel = new Channel(hello[HELLO_ROLE] & 0xff, hello[HELLO_INDEX] & 0xff);
                            identified.countDown();
                        }
                    }
                    while (start < n) {
                        Rule rule = done == null ? match(direction) : null;
                        long at = rule == null ? Long.MAX_VALUE : frames.position(rule, offset, buffer, start, n);
                        if (at >= offset + (n - start)) {
                            frames.advance(buffer, start, n - start);
                            out.write(buffer, start, n - start);
                            offset += n - start;
                            break;
                        }
                        int before = (int) (at - offset);
                        frames.advance(buffer, start, before);
                        out.write(buffer, start, before);
                        offset += before;
                        start += before;
                        done = rule;
                        fired.countDown();
                        switch (rule.action()) {
                            case CUT -> {
                                closeQuietly(source);
                                closeQuietly(destination);
                                return;
                            }
                            case TRUNCATE -> {
                                out.flush();
                                to.shutdownOutput();
                                drain(in);
                                return;
                            }
                            case STALL -> {
                                // Stop reading: the sender's socket buffers fill and its writes back up.
                                shut.await();
                                return;
                            }
                            case STALL_BOTH -> {
                                bothStalled = true;
                                shut.await();
                                return;
                            }
                            case CORRUPT -> {
                                buffer[start] ^= (byte) 0xff;
                            }
                            case DELAY -> {
                                // The rest of this direction goes through a delay line, this read's bytes first.
                                out.flush();
                                delayLine(in, to, rule.delay().toNanos(), Arrays.copyOfRange(buffer, start, n));
                                return;
                            }
                        }
                    }
                    out.flush();
                }
            } catch (IOException | InterruptedException e) {
                closeQuietly(source);
                closeQuietly(destination);
            }
        }

        /**
         * A link {@code delayNanos} long: this thread goes on reading and stamps each read, a second thread
         * writes each read out when its stamp is {@code delayNanos} old, so every byte arrives that late
         * however many are in flight, and in order. The end of the stream travels the same way.
         */
        private void delayLine(InputStream in, Socket to, long delayNanos, byte[] first) throws IOException {
            OutputStream out = to.getOutputStream();
            record InFlight(long due, byte[] bytes) {
            }
            BlockingQueue<InFlight> line = new LinkedBlockingQueue<>();
            byte[] end = new byte[0];
            line.add(new InFlight(System.nanoTime() + delayNanos, first));
            Thread writer = new Thread(() -> {
                try {
                    while (true) {
                        // Polled, so that a proxy closed while nothing is in flight ends this thread too.
                        InFlight next = line.poll(100, TimeUnit.MILLISECONDS);
                        if (next == null) {
                            if (closed || source.isClosed()) {
                                return;
                            }
                            continue;
                        }
                        long left = next.due() - System.nanoTime();
                        if (left > 0 && shut.await(left, TimeUnit.NANOSECONDS)) {
                            return;
                        }
                        if (next.bytes() == end) {
                            out.flush();
                            to.shutdownOutput();
                            return;
                        }
                        out.write(next.bytes());
                        out.flush();
                    }
                } catch (IOException | InterruptedException e) {
                    closeQuietly(source);
                    closeQuietly(destination);
                }
            }, "fault-proxy-delay");
            writer.setDaemon(true);
            writer.start();
            byte[] buffer = new byte[64 * 1024];
            for (int n = in.read(buffer); ; n = in.read(buffer)) {
                long due = System.nanoTime() + delayNanos;
                if (n < 0) {
                    line.add(new InFlight(due, end));
                    return;
                }
                line.add(new InFlight(due, Arrays.copyOf(buffer, n)));
            }
        }

        private Rule match(Direction direction) {
            Channel known = channel;
            if (known == null) {
                return null;
            }
            for (Rule rule : rules) {
                if (rule.direction() == direction && rule.channel().equals(known)) {
                    return rule;
                }
            }
            return null;
        }

        private void drain(InputStream in) throws IOException {
            byte[] sink = new byte[8192];
            while (in.read(sink) >= 0) {
                // Keep reading so the sender does not block; what it sends is lost, as after a cut.
            }
        }
    }

    /**
     * Frame boundaries of one direction: where each frame starts and, once its fifth byte is in, its
     * type. A rule for a frame type fires at that frame's start plus the rule's offset, or at the first
     * byte not yet forwarded when that is later (a frame whose header began in an earlier read).
     */
    private static final class FrameCursor {
        private long position;
        private long frameStart;
        private int headerBytes;
        private final byte[] length = new byte[4];
        private long payloadLeft;
        private int type = -1;
        /** Where the first frame of {@link #sought} started, once seen. */
        private long found = -1;
        private int sought = -1;

        /** The stream offset at which {@code rule} fires: within {@code buffer[start, end)}, or beyond it. */
        long position(Rule rule, long offset, byte[] buffer, int start, int end) {
            if (rule.frameType() < 0) {
                return Math.max(offset, rule.atByte());
            }
            if (sought != rule.frameType()) {
                sought = rule.frameType();
                found = -1;
            }
            if (found < 0) {
                FrameCursor probe = copy();
                for (int i = start; i < end && probe.found < 0; i++) {
                    probe.step(buffer[i]);
                }
                found = probe.found;
            }
            return found < 0 ? Long.MAX_VALUE : Math.max(offset, found + rule.atByte());
        }

        void advance(byte[] buffer, int start, int count) {
            for (int i = start; i < start + count; i++) {
                step(buffer[i]);
            }
        }

        private void step(byte b) {
            if (payloadLeft > 0) {
                payloadLeft--;
                position++;
                return;
            }
            if (headerBytes == 0) {
                frameStart = position;
            }
            if (headerBytes < 4) {
                length[headerBytes] = b;
            } else if (headerBytes == 4) {
                type = b & 0xff;
                if (type == sought && found < 0) {
                    found = frameStart;
                }
            }
            headerBytes++;
            position++;
            if (headerBytes == HEADER) {
                headerBytes = 0;
                payloadLeft = ((length[0] & 0xffL) << 24) | ((length[1] & 0xffL) << 16) | ((length[2] & 0xffL) << 8)
                        | (length[3] & 0xffL);
            }
        }

        private FrameCursor copy() {
            FrameCursor c = new FrameCursor();
            c.position = position;
            c.frameStart = frameStart;
            c.headerBytes = headerBytes;
            System.arraycopy(length, 0, c.length, 0, 4);
            c.payloadLeft = payloadLeft;
            c.type = type;
            c.found = found;
            c.sought = sought;
            return c;
        }
    }

    private static void closeQuietly(java.io.Closeable closeable) {
        try {
            closeable.close();
        } catch (IOException e) {
            // Closing is all that is wanted.
        }
    }
}
