package dev.ferry.protocol.net;

import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameDecoder;
import dev.ferry.protocol.FrameEncoder;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetSocketAddress;

/**
 * The destination's listener: every accepted connection runs the handshake (behind TLS if
 * configured) and, once authenticated, is handed to the {@link SessionAcceptor}. At most
 * {@link Limits#maxConnections()} connections are held; more are refused as BUSY.
 */
public final class ProtocolServer implements AutoCloseable {
    private final ProtocolConfig config;
    private final TokenAuth auth;
    private final EventLoopGroup group;
    private final SessionAcceptor acceptor;
    private final RateLimitedLog refusals;
    private final ChannelGroup channels = new DefaultChannelGroup("ferry-migration", GlobalEventExecutor.INSTANCE);
    private Channel listener;

    public ProtocolServer(ProtocolConfig config, EventLoopGroup group, SessionAcceptor acceptor) {
        this(config, group, acceptor, RateLimitedLog.of(System.getLogger(ProtocolServer.class.getName()), System.Logger.Level.INFO));
    }

    /**
     * @param refusals where refused connections are logged; a peer that has not proven the token can be
     *                 refused as often as it connects, so this log must be rate-limited
     */
    public ProtocolServer(ProtocolConfig config, EventLoopGroup group, SessionAcceptor acceptor, RateLimitedLog refusals) {
        this.config = config;
        this.auth = new TokenAuth(config.token());
        this.group = group;
        this.acceptor = acceptor;
        this.refusals = refusals;
    }

    /** Binds and starts accepting; returns the address actually bound (port 0 picks one). */
    public InetSocketAddress bind(InetSocketAddress address) throws InterruptedException {
        ServerBootstrap bootstrap = new ServerBootstrap()
                .group(group)
                .channel(Transport.serverChannel())
                .option(ChannelOption.SO_BACKLOG, 128)
                .option(ChannelOption.ALLOCATOR, Transport.allocator())
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childOption(ChannelOption.ALLOCATOR, Transport.allocator())
                .childOption(ChannelOption.MESSAGE_SIZE_ESTIMATOR, FrameSizeEstimator.INSTANCE)
                .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK,
                        new WriteBufferWaterMark(config.limits().writeBufferLow(), config.limits().writeBufferHigh()))
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        boolean full = channels.size() >= config.limits().maxConnections();
                        channels.add(ch);
                        if (config.tls() != null) {
                            ch.pipeline().addLast("tls", config.tls().serverHandler(ch.alloc()));
                        }
                        FrameDecoder decoder = new FrameDecoder();
                        // Set before the first read (a channel keeps the read handle it first used): reads
                        // go where the decoder says, into pages once a data channel places them.
                        ch.config().setRecvByteBufAllocator(decoder.reads());
                        ch.pipeline().addLast("decoder", decoder);
                        ch.pipeline().addLast("encoder", new FrameEncoder());
                        ch.pipeline().addLast("handshake", full ? new Busy(refusals)
                                : new ServerHandshake(config, auth, acceptor, refusals, decoder));
                    }
                });
        listener = bootstrap.bind(address).sync().channel();
        return (InetSocketAddress) listener.localAddress();
    }

    /** Open connections, handshaking or not. */
    public int connections() {
        return channels.size();
    }

    /** Stops listening and closes every connection. */
    @Override
    public void close() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
        channels.close().awaitUninterruptibly();
    }

    /** Refuses a connection over the limit as soon as it is up. */
    private static final class Busy extends ChannelInboundHandlerAdapter {
        private final RateLimitedLog refusals;

        Busy(RateLimitedLog refusals) {
            this.refusals = refusals;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            refusals.log(() -> "refused migration channel from " + ctx.channel().remoteAddress() + ": "
                    + ErrorCode.BUSY.label() + ": too many migration connections");
            ctx.writeAndFlush(new Frame.Refuse(ErrorCode.BUSY, "too many migration connections"))
                    .addListener(ChannelFutureListener.CLOSE);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            io.netty.util.ReferenceCountUtil.release(msg);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }
}
