package dev.ferry.orchestrator.api;

import dev.ferry.orchestrator.Managed;
import dev.ferry.orchestrator.config.Endpoint;
import dev.ferry.protocol.net.Transport;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpServerKeepAliveHandler;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.handler.timeout.ReadTimeoutHandler;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control API's HTTP server. Protocol errors (a body over 1 MiB, a request that takes too long
 * to arrive, too many connections) are answered here; application errors come from the routes as
 * {@link ApiException}s. Every error has the one JSON shape; no response ever carries a stack trace.
 */
public final class ApiServer implements Managed {
    private static final Logger LOG = LoggerFactory.getLogger(ApiServer.class);
    public static final int MAX_BODY_BYTES = 1 << 20;
    /** Connections held at once, by default; one more is answered 503 {@code too_many_connections}. */
    public static final int MAX_CONNECTIONS = 1024;
    /** A request must arrive whole within this, by default. */
    public static final java.time.Duration REQUEST_TIMEOUT = java.time.Duration.ofSeconds(10);
    private static final java.time.Duration[] SLO_BUCKETS = {java.time.Duration.ofMillis(1), java.time.Duration.ofMillis(5),
            java.time.Duration.ofMillis(25), java.time.Duration.ofMillis(100), java.time.Duration.ofMillis(500),
            java.time.Duration.ofSeconds(2), java.time.Duration.ofSeconds(10)};
    private static final long IDLE_SECONDS = 120;
    private static final String JSON = "application/json; charset=utf-8";

    private final Endpoint endpoint;
    private final byte[] token;
    private final Router router;
    private final EventLoopGroup group;
    private final ExecutorService workers;
    private final MeterRegistry registry;
    private final long requestTimeoutNanos;
    private final int maxConnections;
    private final ChannelGroup connections = new DefaultChannelGroup("ferry-api", GlobalEventExecutor.INSTANCE);
    private final java.util.concurrent.ConcurrentMap<String, Timer> timers = new java.util.concurrent.ConcurrentHashMap<>();
    private Channel listener;
    private volatile InetSocketAddress bound;

    public ApiServer(Endpoint endpoint, byte[] token, Router router, EventLoopGroup group, ExecutorService workers,
                     MeterRegistry registry, java.time.Duration requestTimeout, int maxConnections) {
        this.requestTimeoutNanos = requestTimeout.toNanos();
        this.maxConnections = maxConnections;
        this.endpoint = endpoint;
        this.token = token.clone();
        this.router = router;
        this.group = group;
        this.workers = workers;
        this.registry = registry;
    }

    /** The address bound, once started. */
    public InetSocketAddress address() {
        return bound;
    }

    @Override
    public void start() throws InterruptedException {
        ServerBootstrap bootstrap = new ServerBootstrap()
                .group(group)
                .channel(Transport.serverChannel())
                .option(ChannelOption.SO_BACKLOG, 1024)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        if (connections.size() >= maxConnections) {
                            // Told why rather than reset; it is not counted, and it may not linger.
                            ch.pipeline()
                                    .addLast("timeout", new ReadTimeoutHandler(requestTimeoutNanos, TimeUnit.NANOSECONDS))
                                    .addLast("http", new HttpServerCodec(4096, 8192, 8192))
                                    .addLast("refuse", new Refuse(maxConnections));
                            return;
                        }
                        connections.add(ch);
                        ch.pipeline()
                                .addLast("idle", new IdleStateHandler(0, 0, IDLE_SECONDS, TimeUnit.SECONDS))
                                .addLast("http", new HttpServerCodec(4096, 8192, 8192))
                                .addLast("keepalive", new HttpServerKeepAliveHandler())
                                .addLast("deadline", new RequestDeadline(requestTimeoutNanos))
                                .addLast("aggregator", new BodyLimit())
                                .addLast("api", new Dispatcher());
                    }
                });
        listener = bootstrap.bind(endpoint.resolve()).sync().channel();
        bound = (InetSocketAddress) listener.localAddress();
    }

    @Override
    public void stop() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
        connections.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    }

    // ---- protocol-level guards -----------------------------------------------------------------

    /** A request must arrive whole within a deadline: slow clients cannot hold a connection forever. */
    private static final class RequestDeadline extends ChannelInboundHandlerAdapter {
        private final long timeoutNanos;
        private ScheduledFuture<?> deadline;

        RequestDeadline(long timeoutNanos) {
            this.timeoutNanos = timeoutNanos;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof HttpRequest && deadline == null) {
                deadline = ctx.executor().schedule(() -> {
                    writeError(ctx, new ApiException(HttpResponseStatus.REQUEST_TIMEOUT, "request_timeout",
                            "the request did not arrive within " + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms"), true);
                }, timeoutNanos, TimeUnit.NANOSECONDS);
            }
            if (msg instanceof LastHttpContent && deadline != null) {
                deadline.cancel(false);
                deadline = null;
            }
            ctx.fireChannelRead(msg);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof IdleStateEvent) {
                ctx.close();
                return;
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (deadline != null) {
                deadline.cancel(false);
            }
            ctx.fireChannelInactive();
        }
    }

    /** The connection over the limit: its first request is answered 503 and the connection closed. */
    private static final class Refuse extends SimpleChannelInboundHandler<HttpObject> {
        private final int limit;

        Refuse(int limit) {
            this.limit = limit;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, HttpObject msg) {
            if (msg instanceof HttpRequest) {
                writeError(ctx, new ApiException(HttpResponseStatus.SERVICE_UNAVAILABLE, "too_many_connections",
                        "the API holds " + limit + " connections already; retry when one closes"), true);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    /** Aggregates bodies up to 1 MiB; a larger one is a 413 in the API's error shape. */
    private static final class BodyLimit extends HttpObjectAggregator {
        BodyLimit() {
            super(MAX_BODY_BYTES, true);
        }

        /**
         * Answers at once. On a keep-alive connection the rest of the body is read and dropped (closing
         * while the client still sends would reset the connection before it reads the answer).
         */
        @Override
        protected void handleOversizedMessage(ChannelHandlerContext ctx, HttpMessage oversized) {
            writeError(ctx, new ApiException(HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE, "body_too_large",
                    "request bodies are limited to " + MAX_BODY_BYTES + " bytes"), !HttpUtil.isKeepAlive(oversized));
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (cause instanceof TooLongFrameException) {
                writeError(ctx, ApiException.badRequest("bad_http", "request line or headers too long"), true);
                return;
            }
            ctx.fireExceptionCaught(cause);
        }
    }

    // ---- dispatch ------------------------------------------------------------------------------

    private final class Dispatcher extends SimpleChannelInboundHandler<HttpObject> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, HttpObject msg) {
            if (!(msg instanceof FullHttpRequest request)) {
                return;
            }
            long start = System.nanoTime();
            if (!request.decoderResult().isSuccess()) {
                writeError(ctx, ApiException.badRequest("bad_http", "the request is not valid HTTP"), true);
                return;
            }
            boolean keepAlive = HttpUtil.isKeepAlive(request);
            QueryStringDecoder uri = new QueryStringDecoder(request.uri());
            Router.Match match = router.match(request.method(), uri.path());
            if (match instanceof Router.NotFound) {
                respond(ctx, keepAlive, start, request.method(), "NOT_FOUND",
                        error(ApiException.notFound("not_found", "no resource at " + uri.path())));
                return;
            }
            if (match instanceof Router.WrongMethod wrong) {
                String allow = wrong.allowed().stream().map(HttpMethod::name).collect(Collectors.joining(", "));
                ApiException e = new ApiException(HttpResponseStatus.METHOD_NOT_ALLOWED, "method_not_allowed",
                        request.method() + " is not allowed on " + uri.path() + "; allowed: " + allow, Map.of("allow", allow));
                FullHttpResponse response = error(e);
                response.headers().set(HttpHeaderNames.ALLOW, allow);
                respond(ctx, keepAlive, start, request.method(), "METHOD_NOT_ALLOWED", response);
                return;
            }
            Router.Found found = (Router.Found) match;
            Router.Route route = found.route();
            try {
                if (!route.open()) {
                    authorize(request);
                }
                byte[] body = ByteBufUtil.getBytes(request.content());
                if (body.length > 0) {
                    requireJson(request);
                }
                ApiRequest apiRequest = new ApiRequest(request.method(), uri.path(), found.parameters(), uri.parameters(), body,
                        request.headers().copy());
                if (route.blocking()) {
                    workers.execute(() -> handle(ctx, keepAlive, start, route, apiRequest));
                } else {
                    handle(ctx, keepAlive, start, route, apiRequest);
                }
            } catch (ApiException e) {
                respond(ctx, keepAlive, start, request.method(), route.template(), error(e));
            } catch (RejectedExecutionException e) {
                respond(ctx, keepAlive, start, request.method(), route.template(), error(new ApiException(
                        HttpResponseStatus.SERVICE_UNAVAILABLE, "shutting_down", "ferryd is shutting down")));
            }
        }

        private void handle(ChannelHandlerContext ctx, boolean keepAlive, long start, Router.Route route, ApiRequest request) {
            ApiResponse response;
            try {
                response = route.handler().handle(request);
            } catch (ApiException e) {
                respond(ctx, keepAlive, start, request.method(), route.template(), error(e));
                return;
            } catch (RuntimeException e) {
                LOG.error("{} {} failed", request.method(), request.path(), e);
                respond(ctx, keepAlive, start, request.method(), route.template(), error(new ApiException(
                        HttpResponseStatus.INTERNAL_SERVER_ERROR, "internal_error",
                        "ferryd failed to handle the request; the daemon log has the details")));
                return;
            }
            if (response instanceof ApiResponse.Stream stream) {
                HttpResponse head = new DefaultHttpResponse(HttpVersion.HTTP_1_1, stream.status());
                head.headers().set(HttpHeaderNames.CONTENT_TYPE, stream.contentType());
                head.headers().set(HttpHeaderNames.CACHE_CONTROL, HttpHeaderValues.NO_CACHE);
                HttpUtil.setTransferEncodingChunked(head, true);
                ctx.writeAndFlush(head);
                record(start, request.method(), route.template(), stream.status());
                stream.writer().accept(ctx);
                return;
            }
            respond(ctx, keepAlive, start, request.method(), route.template(), toHttp(response));
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.debug("API connection {} failed: {}", ctx.channel().remoteAddress(), cause.toString());
            ctx.close();
        }
    }

    private void authorize(HttpRequest request) {
        if (token.length == 0) {
            return;
        }
        String header = request.headers().get(HttpHeaderNames.AUTHORIZATION);
        byte[] presented = header != null && header.regionMatches(true, 0, "Bearer ", 0, 7)
                ? header.substring(7).trim().getBytes(StandardCharsets.UTF_8) : new byte[0];
        if (!MessageDigest.isEqual(presented, token)) {
            throw new ApiException(HttpResponseStatus.UNAUTHORIZED, "unauthorized",
                    header == null ? "this daemon needs 'Authorization: Bearer TOKEN'" : "the bearer token is not this daemon's");
        }
    }

    private static void requireJson(HttpRequest request) {
        String type = request.headers().get(HttpHeaderNames.CONTENT_TYPE);
        String mime = type == null ? "" : type.split(";", 2)[0].trim();
        if (!mime.equalsIgnoreCase("application/json")) {
            throw new ApiException(HttpResponseStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                    "request bodies are JSON: send 'Content-Type: application/json'" + (type == null ? "" : ", not '" + type + "'"));
        }
    }

    private FullHttpResponse toHttp(ApiResponse response) {
        if (response instanceof ApiResponse.JsonBody json) {
            return json(json.status(), json.body());
        }
        if (response instanceof ApiResponse.Text text) {
            FullHttpResponse http = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, text.status(),
                    Unpooled.copiedBuffer(text.body(), StandardCharsets.UTF_8));
            http.headers().set(HttpHeaderNames.CONTENT_TYPE, text.contentType());
            return http;
        }
        return new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, response.status(), Unpooled.EMPTY_BUFFER);
    }

    static FullHttpResponse json(HttpResponseStatus status, Object body) {
        byte[] bytes;
        try {
            bytes = Json.mapper().writeValueAsBytes(body);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("response body not serializable", e);
        }
        FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, Unpooled.wrappedBuffer(bytes));
        response.headers().set(HttpHeaderNames.CONTENT_TYPE, JSON);
        return response;
    }

    static FullHttpResponse error(ApiException e) {
        Map<String, Object> error = new LinkedHashMap<>();
        error.put("code", e.code());
        error.put("message", e.getMessage());
        error.put("details", e.details());
        return json(e.status(), Map.of("error", error));
    }

    private static void writeError(ChannelHandlerContext ctx, ApiException e, boolean close) {
        FullHttpResponse response = error(e);
        response.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, response.content().readableBytes());
        if (close) {
            response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
        } else {
            ctx.writeAndFlush(response);
        }
    }

    private void respond(ChannelHandlerContext ctx, boolean keepAlive, long start, HttpMethod method, String template,
                         FullHttpResponse response) {
        response.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, response.content().readableBytes());
        HttpUtil.setKeepAlive(response, keepAlive);
        record(start, method, template, response.status());
        if (keepAlive) {
            ctx.writeAndFlush(response);
        } else {
            ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
        }
    }

    private void record(long start, HttpMethod method, String template, HttpResponseStatus status) {
        int code = status.code();
        Timer timer = timers.computeIfAbsent(method.name() + ' ' + template + ' ' + code, key -> {
            String outcome = code < 200 ? "INFORMATIONAL" : code < 300 ? "SUCCESS" : code < 400 ? "REDIRECTION"
                    : code < 500 ? "CLIENT_ERROR" : "SERVER_ERROR";
            return Timer.builder("http.server.requests")
                    .description("Control API requests by route template")
                    .tags("method", method.name(), "uri", template, "status", Integer.toString(code), "outcome", outcome)
                    // A few fixed buckets, enough for latency quantiles per route without many series.
                    .serviceLevelObjectives(SLO_BUCKETS)
                    .register(registry);
        });
        timer.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
    }
}
