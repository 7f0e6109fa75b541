package dev.ferry.protocol.net;

import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.FrameDecoder;
import dev.ferry.protocol.FrameEncoder;
import dev.ferry.protocol.SessionId;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Pairs of open {@link FrameChannel}s over TCP on 127.0.0.1, without a handshake, for testing what
 * sits on top of the protocol: each end has the pipeline an authenticated channel has (decoder,
 * encoder, session rules, keepalives), the source's end as the client and the destination's as the
 * server. Real sockets, so a peer that stops reading pushes back on its sender as it would between
 * two daemons.
 */
public final class LoopbackChannels implements AutoCloseable {
    /** The two ends of one channel. */
    public record Pair(FrameChannel source, FrameChannel destination) {
    }

    private final EventLoopGroup group = Transport.newGroup(2, "test-loopback");
    private final Limits limits;
    private final SessionId session = SessionId.random();

    public LoopbackChannels() {
        this(Limits.DEFAULT);
    }

    public LoopbackChannels(Limits limits) {
        this.limits = limits;
    }

    public SessionId session() {
        return session;
    }

    /**
     * Opens a channel of {@code role} and {@code index}; frames that reach either end go to its
     * handler ({@code null}: released).
     */
    public Pair open(ChannelRole role, int index, FrameHandler sourceHandler, FrameHandler destinationHandler) throws Exception {
        CompletableFuture<FrameChannel> accepted = new CompletableFuture<>();
        Channel server = new ServerBootstrap().group(group).channel(Transport.serverChannel())
                .childOption(ChannelOption.MESSAGE_SIZE_ESTIMATOR, FrameSizeEstimator.INSTANCE)
                .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK,
                        new WriteBufferWaterMark(limits.writeBufferLow(), limits.writeBufferHigh()))
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        accepted.complete(session(ch, role, index, true, destinationHandler));
                    }
                }).bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)).sync().channel();
        CompletableFuture<FrameChannel> connected = new CompletableFuture<>();
        new Bootstrap().group(group).channel(Transport.channel())
                .option(ChannelOption.MESSAGE_SIZE_ESTIMATOR, FrameSizeEstimator.INSTANCE)
                .option(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(limits.writeBufferLow(), limits.writeBufferHigh()))
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        connected.complete(session(ch, role, index, false, sourceHandler));
                    }
                }).connect(server.localAddress()).sync();
        Pair pair = new Pair(connected.get(10, TimeUnit.SECONDS), accepted.get(10, TimeUnit.SECONDS));
        server.close();
        return pair;
    }

    private FrameChannel session(Channel ch, ChannelRole role, int index, boolean destination, FrameHandler handler) {
        FrameChannel channel = new FrameChannel(ch, role, index, session, destination);
        channel.setHandler(handler);
        FrameDecoder decoder = new FrameDecoder();
        ch.config().setRecvByteBufAllocator(decoder.reads());
        ch.pipeline().addLast("decoder", decoder);
        ch.pipeline().addLast("encoder", new FrameEncoder());
        ch.pipeline().addLast("session", new SessionHandler(channel, limits));
        return channel;
    }

    @Override
    public void close() {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
