package dev.ferry.protocol.net;

import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameDecoder;
import dev.ferry.protocol.FrameType;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.SessionId;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * The client's half of the handshake: sends HELLO, checks the server's proof of the token before
 * proving its own (the source must know it talks to a token holder before it sends a VM), then
 * waits for ACCEPT or REFUSE. Like the server, it lets its decoder accept only those frames until the
 * channel is open.
 */
final class ClientHandshake extends ChannelInboundHandlerAdapter {
    private final ProtocolConfig config;
    private final TokenAuth auth;
    private final Frame.Hello hello;
    private final FrameHandler handler;
    private final CompletableFuture<FrameChannel> result;
    private final FrameDecoder decoder;
    private ScheduledFuture<?> timeout;
    private boolean challenged;

    ClientHandshake(ProtocolConfig config, TokenAuth auth, SessionId session, ChannelRole role, int index, FrameHandler handler,
                    CompletableFuture<FrameChannel> result, FrameDecoder decoder) {
        this.config = config;
        this.auth = auth;
        this.hello = new Frame.Hello(Frame.MAGIC, config.minVersion(), config.maxVersion(), role.code(), index, session,
                TokenAuth.nonce());
        this.handler = handler;
        this.result = result;
        this.decoder = decoder;
        decoder.allowOnly(EnumSet.of(FrameType.CHALLENGE, FrameType.REFUSE));
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        long nanos = config.limits().handshakeTimeout().toNanos();
        timeout = ctx.executor().schedule(() -> fail(ctx, new ProtocolException(ErrorCode.TIMEOUT,
                "handshake not completed within " + TimeUnit.NANOSECONDS.toMillis(nanos) + " ms")), nanos, TimeUnit.NANOSECONDS);
        ctx.writeAndFlush(hello);
        ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (result.isDone()) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (msg instanceof Frame.Refuse refuse) {
            fail(ctx, new ProtocolException(refuse.code(), "refused by " + ctx.channel().remoteAddress() + ": " + refuse.message()));
        } else if (!challenged && msg instanceof Frame.Challenge challenge) {
            challenged = true;
            if (challenge.version() < config.minVersion() || challenge.version() > config.maxVersion()) {
                fail(ctx, new ProtocolException(ErrorCode.UNSUPPORTED_VERSION, "server chose version " + challenge.version()));
                return;
            }
            if (!TokenAuth.same(auth.serverProof(hello, challenge.version(), challenge.nonce()), challenge.proof())) {
                fail(ctx, new ProtocolException(ErrorCode.AUTH_FAILED, "the server at " + ctx.channel().remoteAddress()
                        + " could not prove it holds the token"));
                return;
            }
            decoder.allowOnly(EnumSet.of(FrameType.ACCEPT, FrameType.REFUSE));
            ctx.writeAndFlush(new Frame.Auth(auth.clientProof(hello, challenge.version(), challenge.nonce())));
        } else if (challenged && msg instanceof Frame.Accept) {
            timeout.cancel(false);
            decoder.allowAll();
            FrameChannel channel = new FrameChannel(ctx.channel(), ChannelRole.of(hello.role()), hello.channelIndex(), hello.session(), false);
            channel.setHandler(handler);
            ctx.pipeline().replace(this, "session", new SessionHandler(channel, config.limits()));
            result.complete(channel);
        } else {
            ReferenceCountUtil.release(msg);
            String got = msg instanceof Frame frame ? frame.type().name() : msg.getClass().getSimpleName();
            fail(ctx, new ProtocolException(ErrorCode.OUT_OF_ORDER, "unexpected " + got + " during the handshake"));
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        ProtocolException problem = SessionHandler.toProtocolException(cause);
        if (!challenged && NOT_A_FRAME.contains(problem.code())) {
            // The first bytes back were no frame of ours at all. Most often the address is a daemon's HTTP
            // API (an HTTP response reads as a frame of type 0x2f, the '/' of "HTTP/1.1"), not its listener.
            // The caller's message names the address already ("connecting to HOST:PORT: ...").
            problem = new ProtocolException(problem.code(), "the peer does not speak the migration protocol (" + problem.getMessage()
                    + "); is it a daemon's HTTP address rather than its --migration listener?");
        }
        fail(ctx, problem);
    }

    /** Decoding failures that say the peer's bytes were never frames. */
    private static final Set<ErrorCode> NOT_A_FRAME = EnumSet.of(ErrorCode.MALFORMED, ErrorCode.CHECKSUM, ErrorCode.OVERSIZE,
            ErrorCode.UNKNOWN_TYPE, ErrorCode.TRUNCATED, ErrorCode.BAD_MAGIC);

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        fail(ctx, new ProtocolException(ErrorCode.CONNECTION_LOST, "connection closed during the handshake"));
        ctx.fireChannelInactive();
    }

    private void fail(ChannelHandlerContext ctx, ProtocolException cause) {
        if (timeout != null) {
            timeout.cancel(false);
        }
        if (result.completeExceptionally(cause)) {
            ctx.close();
        }
    }
}
