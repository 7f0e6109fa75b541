package dev.ferry.protocol.net;

import dev.ferry.protocol.FrameDecoder;
import dev.ferry.protocol.FrameEncoder;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.SessionId;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import java.net.InetSocketAddress;
import java.util.concurrent.CompletableFuture;

/** The source's side: opens authenticated channels of a session to a destination. */
public final class ProtocolClient {
    private final ProtocolConfig config;
    private final TokenAuth auth;
    private final EventLoopGroup group;

    public ProtocolClient(ProtocolConfig config, EventLoopGroup group) {
        this.config = config;
        this.auth = new TokenAuth(config.token());
        this.group = group;
    }

    /**
     * Connects, runs the handshake and completes with the open channel, or fails with a
     * {@link ProtocolException} (its code says why: refused, wrong token, TLS, connection lost...).
     */
    public CompletableFuture<FrameChannel> connect(InetSocketAddress address, SessionId session, ChannelRole role, int index,
                                                   FrameHandler handler) {
        CompletableFuture<FrameChannel> result = new CompletableFuture<>();
        Bootstrap bootstrap = new Bootstrap()
                .group(group)
                .channel(Transport.channel())
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.ALLOCATOR, Transport.allocator())
                .option(ChannelOption.MESSAGE_SIZE_ESTIMATOR, FrameSizeEstimator.INSTANCE)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) config.limits().handshakeTimeout().toMillis())
                .option(ChannelOption.WRITE_BUFFER_WATER_MARK,
                        new WriteBufferWaterMark(config.limits().writeBufferLow(), config.limits().writeBufferHigh()))
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        if (config.tls() != null) {
                            ch.pipeline().addLast("tls", config.tls().clientHandler(ch.alloc(), address.getHostString(), address.getPort()));
                        }
                        FrameDecoder decoder = new FrameDecoder();
                        ch.pipeline().addLast("decoder", decoder);
                        ch.pipeline().addLast("encoder", new FrameEncoder());
                        ch.pipeline().addLast("handshake", new ClientHandshake(config, auth, session, role, index, handler, result,
                                decoder));
                    }
                });
        ChannelFuture connect = bootstrap.connect(address);
        connect.addListener(f -> {
            if (!f.isSuccess()) {
                result.completeExceptionally(SessionHandler.toProtocolException(f.cause()));
            }
        });
        return result;
    }
}
