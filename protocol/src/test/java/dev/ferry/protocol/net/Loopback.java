package dev.ferry.protocol.net;

import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.SessionId;
import io.netty.channel.EventLoopGroup;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/** A protocol server on 127.0.0.1, port 0, and a client for it, each with its own event loops. */
final class Loopback implements AutoCloseable {
    static final Duration TEST_TIMEOUT = Duration.ofSeconds(30);

    final EventLoopGroup serverGroup = Transport.newGroup(2, "test-destination");
    final EventLoopGroup clientGroup = Transport.newGroup(2, "test-source");
    final ProtocolServer server;
    final ProtocolClient client;
    final InetSocketAddress address;

    Loopback(ProtocolConfig serverConfig, ProtocolConfig clientConfig, SessionAcceptor acceptor) throws InterruptedException {
        this(serverConfig, clientConfig, acceptor, RateLimitedLog.of(System.getLogger(Loopback.class.getName()), System.Logger.Level.INFO));
    }

    Loopback(ProtocolConfig serverConfig, ProtocolConfig clientConfig, SessionAcceptor acceptor, RateLimitedLog refusals)
            throws InterruptedException {
        server = new ProtocolServer(serverConfig, serverGroup, acceptor, refusals);
        address = server.bind(new InetSocketAddress("127.0.0.1", 0));
        client = new ProtocolClient(clientConfig, clientGroup);
    }

    /** A server accepting with {@code acceptor} and a client, both with {@code token}; for a field a test closes. */
    static Loopback started(SessionAcceptor acceptor, String token) {
        try {
            return new Loopback(config(token), config(token), acceptor);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while binding", e);
        }
    }

    static ProtocolConfig config(String token) {
        return ProtocolConfig.of(token.getBytes(java.nio.charset.StandardCharsets.UTF_8), null)
                .withLimits(Limits.DEFAULT.withKeepalive(Duration.ofMillis(100), Duration.ofSeconds(5)));
    }

    CompletableFuture<FrameChannel> open(SessionId session, ChannelRole role, int index, FrameHandler handler) {
        return client.connect(address, session, role, index, handler);
    }

    FrameChannel connect(SessionId session, ChannelRole role, int index, FrameHandler handler) throws Exception {
        return open(session, role, index, handler).get(TEST_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }

    /** The code a connection attempt failed with. */
    ProtocolException refusal(SessionId session, ChannelRole role, int index) throws Exception {
        try {
            FrameChannel channel = connect(session, role, index, null);
            channel.close();
            throw new AssertionError("the channel was accepted");
        } catch (ExecutionException e) {
            return (ProtocolException) e.getCause();
        }
    }

    @Override
    public void close() {
        server.close();
        clientGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        serverGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
