package dev.ferry.protocol.net;

import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameDecoder;
import dev.ferry.protocol.FrameType;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.ProtocolVersion;
import dev.ferry.protocol.ChannelRole;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import java.util.EnumSet;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * The server's half of the handshake. It holds nothing but the HELLO and two nonces until the
 * client has proven the token; wrong magic, version, role or token are refused with a REFUSE frame
 * naming the reason, and the connection is closed. Only then does the {@link SessionAcceptor} hear
 * of the channel. Until then the decoder accepts only the frame the handshake expects next (HELLO,
 * then AUTH): any other is refused as soon as its header is in, never held while its payload trickles.
 */
final class ServerHandshake extends ChannelInboundHandlerAdapter {
    private static final System.Logger LOG = System.getLogger(ServerHandshake.class.getName());

    private final ProtocolConfig config;
    private final TokenAuth auth;
    private final SessionAcceptor acceptor;
    private final RateLimitedLog refusals;
    private final FrameDecoder decoder;
    private Frame.Hello hello;
    private int version;
    private byte[] serverNonce;
    private boolean done;
    private ScheduledFuture<?> timeout;

    ServerHandshake(ProtocolConfig config, TokenAuth auth, SessionAcceptor acceptor, RateLimitedLog refusals,
                    FrameDecoder decoder) {
        this.config = config;
        this.auth = auth;
        this.acceptor = acceptor;
        this.refusals = refusals;
        this.decoder = decoder;
        decoder.allowOnly(EnumSet.of(FrameType.HELLO));
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        long nanos = config.limits().handshakeTimeout().toNanos();
        timeout = ctx.executor().schedule(() -> refuse(ctx, ErrorCode.TIMEOUT,
                "handshake not completed within " + TimeUnit.NANOSECONDS.toMillis(nanos) + " ms"), nanos, TimeUnit.NANOSECONDS);
        ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (done) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (hello == null && msg instanceof Frame.Hello h) {
            hello(ctx, h);
        } else if (hello != null && msg instanceof Frame.Auth a) {
            auth(ctx, a);
        } else {
            ReferenceCountUtil.release(msg);
            String got = msg instanceof Frame frame ? frame.type().name() : msg.getClass().getSimpleName();
            refuse(ctx, ErrorCode.OUT_OF_ORDER, "expected " + (hello == null ? FrameType.HELLO : FrameType.AUTH) + ", got " + got);
        }
    }

    private void hello(ChannelHandlerContext ctx, Frame.Hello h) {
        if (h.magic() != Frame.MAGIC) {
            refuse(ctx, ErrorCode.BAD_MAGIC, String.format("not a Ferry migration peer: magic 0x%016x", h.magic()));
            return;
        }
        int negotiated = ProtocolVersion.negotiate(h.minVersion(), h.maxVersion(), config.minVersion(), config.maxVersion());
        if (negotiated < 0) {
            refuse(ctx, ErrorCode.UNSUPPORTED_VERSION, "this daemon speaks protocol versions " + config.minVersion() + ".."
                    + config.maxVersion() + "; the peer offered " + h.minVersion() + ".." + h.maxVersion());
            return;
        }
        ChannelRole role = ChannelRole.of(h.role());
        if (role == null || (role == ChannelRole.CONTROL && h.channelIndex() != 0)
                || (role == ChannelRole.DATA && h.channelIndex() >= config.limits().maxDataChannels())) {
            refuse(ctx, ErrorCode.BAD_ROLE, "role " + h.role() + " with channel index " + h.channelIndex()
                    + " is not a control channel (index 0) or a data channel (index below " + config.limits().maxDataChannels() + ")");
            return;
        }
        hello = h;
        version = negotiated;
        serverNonce = TokenAuth.nonce();
        decoder.allowOnly(EnumSet.of(FrameType.AUTH));
        ctx.writeAndFlush(new Frame.Challenge(version, serverNonce, auth.serverProof(h, version, serverNonce)));
    }

    private void auth(ChannelHandlerContext ctx, Frame.Auth a) {
        if (!TokenAuth.same(auth.clientProof(hello, version, serverNonce), a.proof())) {
            refuse(ctx, ErrorCode.AUTH_FAILED, "the peer's proof does not match this daemon's token");
            return;
        }
        ChannelRole role = ChannelRole.of(hello.role());
        FrameChannel channel = new FrameChannel(ctx.channel(), role, hello.channelIndex(), hello.session(), true);
        FrameHandler handler;
        try {
            handler = role == ChannelRole.CONTROL ? acceptor.acceptControl(channel) : acceptor.acceptData(channel);
        } catch (ProtocolException e) {
            refuse(ctx, e.code(), e.getMessage());
            return;
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "session acceptor failed", e);
            refuse(ctx, ErrorCode.INTERNAL, "the daemon could not accept the channel");
            return;
        }
        done = true;
        timeout.cancel(false);
        // The session rules decide from here what is in order.
        decoder.allowAll();
        channel.setHandler(handler);
        ctx.pipeline().replace(this, "session", new SessionHandler(channel, config.limits()));
        ctx.writeAndFlush(new Frame.Accept(FrameType.MAX_PAYLOAD, (int) config.limits().keepaliveTimeout().toMillis()));
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        ProtocolException e = SessionHandler.toProtocolException(cause);
        refuse(ctx, e.code(), e.getMessage());
    }

    private void refuse(ChannelHandlerContext ctx, ErrorCode code, String message) {
        if (done) {
            return;
        }
        done = true;
        if (timeout != null) {
            timeout.cancel(false);
        }
        refusals.log(() -> "refused migration channel from " + ctx.channel().remoteAddress() + ": " + code.label() + ": " + message);
        if (ctx.channel().isActive()) {
            ctx.writeAndFlush(new Frame.Refuse(code, message)).addListener(ChannelFutureListener.CLOSE);
        } else {
            ctx.close();
        }
    }
}
