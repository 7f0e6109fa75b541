package dev.ferry.orchestrator.api;

import dev.ferry.orchestrator.Managed;
import dev.ferry.orchestrator.config.Endpoint;
import dev.ferry.protocol.net.RateLimitedLog;
import dev.ferry.protocol.net.Transport;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufOutputStream;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control API's HTTP/1.1 server. Protocol errors are answered here, by the server's own guards;
 * application errors come from the routes as {@link ApiException}s. Every error has the one JSON shape;
 * no response ever carries a stack trace.
 *
 * <p>The guards keep any one client, however slow or hostile, from holding the server against others:
 * <ul>
 *   <li>each request must arrive whole (request line, headers and body) within a deadline counted from
 *       its first byte: 408, and the connection is closed;
 *   <li>connections are limited in all and per remote address; when the server is full, the connection
 *       idle longest makes room, else 503 (see {@link ConnectionLimiter});
 *   <li>pipelined requests are answered one at a time, in order, and a connection closes only once its
 *       last answer is written; it stops reading while {@value #PIPELINE_PAUSE} requests wait, and one
 *       beyond {@value #MAX_PIPELINED} is answered 429;
 *   <li>HTTP/1.0 and HTTP/1.1 only (505), malformed requests and bad percent-escapes 400, bodies over
 *       1 MiB 413;
 *   <li>refusals are logged, at most so many lines per interval.
 * </ul>
 */
public final class ApiServer implements Managed {
    private static final Logger LOG = LoggerFactory.getLogger(ApiServer.class);
    public static final int MAX_BODY_BYTES = 1 << 20;
    /** Requests waiting on one connection at which it stops reading until they are answered. */
    static final int PIPELINE_PAUSE = 16;
    /** Requests waiting on one connection at most; one more is answered 429 and the connection closed. */
    static final int MAX_PIPELINED = 128;
    /**
     * Connections turned away that wait for their request to be told why (503); beyond this many at once
     * a connection over the limits is closed unanswered, so that refusing costs at most this many sockets.
     */
    static final int MAX_REFUSING = 64;
    private static final Duration[] SLO_BUCKETS = {Duration.ofMillis(1), Duration.ofMillis(5), Duration.ofMillis(25),
            Duration.ofMillis(100), Duration.ofMillis(500), Duration.ofSeconds(2), Duration.ofSeconds(10)};
    private static final String JSON = "application/json; charset=utf-8";

    /**
     * The server's guards.
     *
     * @param requestTimeout           a request must arrive whole within this from its first byte
     * @param maxConnections           connections held at once
     * @param maxConnectionsPerAddress connections held at once from one remote address
     * @param idleTimeout              a connection with nothing under way for this long is closed
     */
    public record Limits(Duration requestTimeout, int maxConnections, int maxConnectionsPerAddress, Duration idleTimeout) {
        /** 10 s per request; 1024 connections, a quarter of them from one address; 120 s idle. */
        public static final Limits DEFAULT = new Limits(Duration.ofSeconds(10), 1024, 256, Duration.ofSeconds(120));

        public Limits {
            if (requestTimeout.isNegative() || requestTimeout.isZero() || idleTimeout.isNegative() || idleTimeout.isZero()) {
                throw new IllegalArgumentException("API timeouts must be positive");
            }
            if (maxConnections < 1 || maxConnectionsPerAddress < 1 || maxConnectionsPerAddress > maxConnections) {
                throw new IllegalArgumentException("API connection limits: " + maxConnectionsPerAddress + " per address of "
                        + maxConnections);
            }
        }

        public Limits withRequestTimeout(Duration timeout) {
            return new Limits(timeout, maxConnections, maxConnectionsPerAddress, idleTimeout);
        }

        public Limits withConnections(int max, int perAddress) {
            return new Limits(requestTimeout, max, perAddress, idleTimeout);
        }
    }

    /** An answer the server's guards give in the place of a request's: in order, like any other. */
    private record Refusal(ApiException error, boolean close) {
    }

    /** What the answer to a request needs to know of it. */
    private record Exchange(HttpMethod method, HttpVersion version, boolean keepAlive, long startNanos) {
    }

    private final Endpoint endpoint;
    private final byte[] token;
    private final Router router;
    private final EventLoopGroup group;
    private final ExecutorService workers;
    private final MeterRegistry registry;
    private final Limits limits;
    private final RateLimitedLog refusals;
    private final ConnectionLimiter limiter;
    private final AtomicInteger refusing = new AtomicInteger();
    private final ChannelGroup connections = new DefaultChannelGroup("ferry-api", GlobalEventExecutor.INSTANCE);
    private final ConcurrentMap<String, Timer> timers = new ConcurrentHashMap<>();
    private Channel listener;
    private volatile InetSocketAddress bound;

    public ApiServer(Endpoint endpoint, byte[] token, Router router, EventLoopGroup group, ExecutorService workers,
                     MeterRegistry registry, Limits limits) {
        this(endpoint, token, router, group, workers, registry, limits,
                new RateLimitedLog(LOG::info, RateLimitedLog.DEFAULT_LIMIT, RateLimitedLog.DEFAULT_INTERVAL));
    }

    /** @param refusals where refused connections and requests are logged; anyone who reaches the port can cause them */
    public ApiServer(Endpoint endpoint, byte[] token, Router router, EventLoopGroup group, ExecutorService workers,
                     MeterRegistry registry, Limits limits, RateLimitedLog refusals) {
        this.endpoint = endpoint;
        this.token = token.clone();
        this.router = router;
        this.group = group;
        this.workers = workers;
        this.registry = registry;
        this.limits = limits;
        this.refusals = refusals;
        this.limiter = new ConnectionLimiter(limits.maxConnections(), limits.maxConnectionsPerAddress());
    }

    /** The address bound, once started. */
    public InetSocketAddress address() {
        return bound;
    }

    /** Connections held with nothing under way: the ones that make room when the server is full. */
    int idleConnections() {
        return limiter.idle();
    }

    @Override
    public void start() throws InterruptedException {
        ServerBootstrap bootstrap = new ServerBootstrap()
                .group(group)
                .channel(Transport.serverChannel())
                .option(ChannelOption.SO_BACKLOG, 1024)
                .childOption(ChannelOption.TCP_NODELAY, true)
                // API requests are small: reads of at most 16 KiB also bound how many pipelined requests one
                // read can hold, and so what a connection can make the server hold before it stops reading.
                .childOption(ChannelOption.RCVBUF_ALLOCATOR, new AdaptiveRecvByteBufAllocator(64, 2048, 16 << 10))
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        accept(ch);
                    }
                });
        listener = bootstrap.bind(endpoint.resolve()).sync().channel();
        bound = (InetSocketAddress) listener.localAddress();
    }

    /**
     * The HTTP codec. It fails a connection on which more requests are decoded than answered than its
     * pipeline depth, without an answer; the dispatcher's limit ({@value #MAX_PIPELINED}) must come first,
     * and after it the requests left in the same read are still decoded (and dropped), at most as many as
     * a read of 16 KiB can hold.
     */
    private static HttpServerCodec codec() {
        return new HttpServerCodec(new HttpDecoderConfig().setMaxInitialLineLength(4096).setMaxHeaderSize(8192)
                .setMaxChunkSize(8192), MAX_PIPELINED + 1 + (16 << 10) / 16);
    }

    /** Admits a new connection and builds its pipeline, or turns it away. */
    void accept(Channel ch) {
        connections.add(ch);
        ConnectionLimiter.Connection connection = new ConnectionLimiter.Connection(ch);
        ConnectionLimiter.Refusal refusal = limiter.admit(connection);
        if (refusal != null) {
            refuse(ch, connection, refusal);
            return;
        }
        ch.closeFuture().addListener(f -> {
            limiter.release(connection);
            if (connection.evicted()) {
                refusals.log(() -> "closed idle API connection from " + ch.remoteAddress() + " to make room for another");
            }
        });
        RequestGuard guard = new RequestGuard(connection);
        ch.pipeline()
                .addLast("idle", new IdleStateHandler(0, 0, limits.idleTimeout().toNanos(), TimeUnit.NANOSECONDS))
                .addLast("guard", guard)
                .addLast("http", codec())
                .addLast("ends", guard.ends())
                .addLast("aggregator", new BodyLimit())
                .addLast("api", new Dispatcher(connection, guard));
    }

    @Override
    public void stop() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
        connections.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    }

    // ---- connections over the limits ------------------------------------------------------------

    /**
     * A connection over the limits is told why (503) once its request's head is in, then closed. It is not
     * counted; it may not linger past the request deadline, counted from its start however it trickles;
     * and only so many wait at once.
     */
    private void refuse(Channel ch, ConnectionLimiter.Connection connection, ConnectionLimiter.Refusal refusal) {
        boolean perAddress = refusal == ConnectionLimiter.Refusal.ADDRESS;
        String message = perAddress
                ? "the API holds " + limiter.maxPerAddress() + " connections from " + connection.address().getHostAddress()
                        + " already; retry when one closes"
                : "the API holds " + limiter.max() + " connections already; retry when one closes";
        refusals.log(() -> "refused API connection from " + ch.remoteAddress() + ": too_many_connections: " + message);
        if (refusing.incrementAndGet() > MAX_REFUSING) {
            refusing.decrementAndGet();
            ch.close();
            return;
        }
        ch.closeFuture().addListener(f -> refusing.decrementAndGet());
        ScheduledFuture<?> deadline = ch.eventLoop().schedule(() -> {
            ch.close();
        }, limits.requestTimeout().toNanos(), TimeUnit.NANOSECONDS);
        ch.closeFuture().addListener(f -> deadline.cancel(false));
        ApiException error = new ApiException(HttpResponseStatus.SERVICE_UNAVAILABLE, "too_many_connections", message,
                Map.of("limit", perAddress ? limiter.maxPerAddress() : limiter.max(), "scope", perAddress ? "address" : "server"));
        ch.pipeline()
                .addLast("http", new HttpServerCodec(4096, 8192, 8192))
                .addLast("refuse", new ChannelInboundHandlerAdapter() {
                    private boolean answered;

                    @Override
                    public void channelRead(ChannelHandlerContext ctx, Object msg) {
                        boolean request = msg instanceof HttpRequest;
                        ReferenceCountUtil.release(msg);
                        if (request && !answered) {
                            answered = true;
                            FullHttpResponse response = error(error);
                            response.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, response.content().readableBytes());
                            response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
                            ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
                        }
                    }

                    @Override
                    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                        ctx.close();
                    }
                });
    }

    // ---- the guards of an admitted connection --------------------------------------------------

    /**
     * First in the pipeline, before the HTTP decoder: a request's deadline, from its first byte (the
     * connection's first, or the first after the previous request) until the decoder has seen its end;
     * marks the connection busy meanwhile; drops what arrives after the connection's last request; closes
     * it when it has been idle too long.
     */
    private final class RequestGuard extends ChannelInboundHandlerAdapter {
        private final ConnectionLimiter.Connection connection;
        /** Its own place in the pipeline: a refusal for a late request starts here, before the decoder. */
        private ChannelHandlerContext ctx;
        /**
         * One timer per connection, not one per request: it is armed when a request begins and none is
         * pending, and when it fires for a request that is still arriving but began later, it re-arms for
         * that request's remaining time (scheduling and cancelling a task for every request costs more
         * than the requests of a busy keep-alive connection).
         */
        private ScheduledFuture<?> deadline;
        /** When the request arriving began (or reading resumed for it), in {@link System#nanoTime()}. */
        private long arrivingSince;
        private boolean arriving;
        private boolean paused;
        private boolean stopped;

        RequestGuard(ConnectionLimiter.Connection connection) {
            this.connection = connection;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext context) {
            this.ctx = context;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (stopped) {
                ReferenceCountUtil.release(msg);
                return;
            }
            if (!arriving && msg instanceof ByteBuf bytes && bytes.isReadable()) {
                if (!connection.busy()) {
                    // Evicted to make room: it is closing, and what it sent is dropped.
                    ReferenceCountUtil.release(msg);
                    return;
                }
                begin();
            }
            ctx.fireChannelRead(msg);
        }

        private void begin() {
            arriving = true;
            arrivingSince = System.nanoTime();
            if (!paused) {
                arm(limits.requestTimeout().toNanos());
            }
        }

        private void arm(long delayNanos) {
            if (deadline == null) {
                deadline = ctx.executor().schedule(this::check, delayNanos, TimeUnit.NANOSECONDS);
            }
        }

        private void check() {
            deadline = null;
            if (stopped || !arriving || paused) {
                return; // begin() or resume() arms it again
            }
            long nanos = limits.requestTimeout().toNanos();
            long left = nanos - (System.nanoTime() - arrivingSince);
            if (left > 0) {
                arm(left);
                return;
            }
            stop();
            // Downstream like any request, so that it is answered after the requests before it.
            ctx.fireChannelRead(new Refusal(new ApiException(HttpResponseStatus.REQUEST_TIMEOUT, "request_timeout",
                    "the request did not arrive whole within " + TimeUnit.NANOSECONDS.toMillis(nanos) + " ms"), true));
        }

        /** Whether part of a request is in and its end is not. */
        boolean arriving() {
            return arriving;
        }

        /** The connection's last request is in: nothing after it is read, and no deadline runs. */
        void stop() {
            stopped = true;
            arriving = false;
            cancel();
        }

        /**
         * The server stops reading while the requests before are answered: the one arriving is not to blame
         * for the wait, so its deadline stops, and starts anew when reading resumes.
         */
        void pause() {
            paused = true;
        }

        void resume() {
            paused = false;
            if (arriving && !stopped) {
                begin();
            }
        }

        private void cancel() {
            if (deadline != null) {
                deadline.cancel(false);
                deadline = null;
            }
        }

        /**
         * Behind the decoder: a request's end (its body's too, even one dropped as too large) ends its
         * deadline. A request whose head came in the same read as the previous one's end starts its own.
         */
        ChannelInboundHandlerAdapter ends() {
            return new ChannelInboundHandlerAdapter() {
                @Override
                public void channelRead(ChannelHandlerContext context, Object msg) {
                    if (msg instanceof HttpRequest && !arriving && !stopped) {
                        begin();
                    }
                    if (msg instanceof LastHttpContent) {
                        arriving = false; // the timer, if it fires, finds nothing arriving
                    }
                    context.fireChannelRead(msg);
                }
            };
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof IdleStateEvent) {
                if (connection.isIdle()) {
                    ctx.close();
                }
                return;
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            stop();
            ctx.fireChannelInactive();
        }
    }

    /** Aggregates bodies up to 1 MiB; a larger one is answered 413 in its turn. */
    private static final class BodyLimit extends HttpObjectAggregator {
        BodyLimit() {
            super(MAX_BODY_BYTES, true);
        }

        /**
         * On a keep-alive connection the rest of the body is read and dropped (closing while the client
         * still sends would reset the connection before it reads the answer).
         */
        @Override
        protected void handleOversizedMessage(ChannelHandlerContext ctx, HttpMessage oversized) {
            ctx.fireChannelRead(new Refusal(new ApiException(HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE, "body_too_large",
                    "request bodies are limited to " + MAX_BODY_BYTES + " bytes"), !HttpUtil.isKeepAlive(oversized)));
        }
    }

    // ---- dispatch ------------------------------------------------------------------------------

    /**
     * Answers a connection's requests one at a time, in the order they came, whether a route answers
     * on the event loop or on a worker; refusals of the guards take their place in that order. The
     * connection closes only after its last answer is written.
     */
    private final class Dispatcher extends ChannelInboundHandlerAdapter {
        private final ConnectionLimiter.Connection connection;
        private final RequestGuard guard;
        private final ArrayDeque<Object> waiting = new ArrayDeque<>();
        /** A request is being answered, or a stream owns the connection. */
        private boolean answering;
        /** The connection's last request (or a refusal that closes it) is in; nothing after it is taken. */
        private boolean lastTaken;
        private boolean closed;
        private boolean dispatching;

        Dispatcher(ConnectionLimiter.Connection connection, RequestGuard guard) {
            this.connection = connection;
            this.guard = guard;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (closed || lastTaken || !(msg instanceof FullHttpRequest || msg instanceof Refusal)) {
                ReferenceCountUtil.release(msg);
                return;
            }
            Object entry = msg;
            boolean last;
            if (msg instanceof FullHttpRequest request) {
                if (waiting.size() >= MAX_PIPELINED) {
                    request.release();
                    entry = new Refusal(new ApiException(HttpResponseStatus.TOO_MANY_REQUESTS, "too_many_requests",
                            "more than " + MAX_PIPELINED + " pipelined requests at once on one connection"), true);
                    last = true;
                } else {
                    last = !request.decoderResult().isSuccess() || !HttpUtil.isKeepAlive(request);
                }
            } else {
                last = ((Refusal) msg).close();
            }
            waiting.add(entry);
            if (last) {
                lastTaken = true;
                guard.stop();
            }
            if (waiting.size() >= PIPELINE_PAUSE && ctx.channel().config().isAutoRead()) {
                ctx.channel().config().setAutoRead(false);
                guard.pause();
            }
            next(ctx);
        }

        /** Starts the next waiting request, and the one after when an answer comes at once. */
        private void next(ChannelHandlerContext ctx) {
            if (dispatching) {
                return;
            }
            dispatching = true;
            try {
                while (!answering && !closed && !waiting.isEmpty() && ctx.channel().isWritable()) {
                    Object entry = waiting.poll();
                    answering = true;
                    if (entry instanceof Refusal refusal) {
                        refuse(ctx, refusal, HttpVersion.HTTP_1_1);
                    } else {
                        FullHttpRequest request = (FullHttpRequest) entry;
                        try {
                            start(ctx, request);
                        } finally {
                            request.release();
                        }
                    }
                }
            } finally {
                dispatching = false;
            }
            if (!lastTaken && !closed && waiting.size() < PIPELINE_PAUSE && !ctx.channel().config().isAutoRead()) {
                ctx.channel().config().setAutoRead(true);
                guard.resume();
            }
        }

        private void start(ChannelHandlerContext ctx, FullHttpRequest request) {
            long start = System.nanoTime();
            if (!request.decoderResult().isSuccess()) {
                Throwable cause = request.decoderResult().cause();
                refuse(ctx, new Refusal(ApiException.badRequest("bad_http", "the request is not valid HTTP"
                        + (cause instanceof io.netty.handler.codec.TooLongFrameException ? ": request line or headers too long" : "")),
                        true), HttpVersion.HTTP_1_1);
                return;
            }
            HttpVersion version = request.protocolVersion();
            if (!version.protocolName().equals("HTTP") || version.majorVersion() != 1 || version.minorVersion() > 1) {
                refuse(ctx, new Refusal(new ApiException(HttpResponseStatus.HTTP_VERSION_NOT_SUPPORTED, "http_version_not_supported",
                        "ferryd speaks HTTP/1.1 and HTTP/1.0, not " + version.text(), Map.of("version", version.text())), true),
                        HttpVersion.HTTP_1_1);
                return;
            }
            Exchange exchange = new Exchange(request.method(), version, HttpUtil.isKeepAlive(request), start);
            String path;
            Map<String, List<String>> query;
            try {
                QueryStringDecoder uri = new QueryStringDecoder(request.uri());
                path = uri.path();
                query = uri.parameters();
            } catch (IllegalArgumentException e) {
                refuse(ctx, new Refusal(ApiException.badRequest("bad_uri", "the request target is not a valid URI: "
                        + e.getMessage()), !exchange.keepAlive()), version);
                return;
            }
            Router.Match match = router.match(request.method(), path);
            if (match instanceof Router.NotFound) {
                complete(ctx, exchange, "NOT_FOUND", error(ApiException.notFound("not_found", "no resource at " + path)));
                return;
            }
            if (match instanceof Router.WrongMethod wrong) {
                String allow = wrong.allowed().stream().map(HttpMethod::name).collect(Collectors.joining(", "));
                ApiException e = new ApiException(HttpResponseStatus.METHOD_NOT_ALLOWED, "method_not_allowed",
                        request.method() + " is not allowed on " + path + "; allowed: " + allow, Map.of("allow", allow));
                FullHttpResponse response = error(e);
                response.headers().set(HttpHeaderNames.ALLOW, allow);
                complete(ctx, exchange, "METHOD_NOT_ALLOWED", response);
                return;
            }
            Router.Found found = (Router.Found) match;
            Router.Route route = found.route();
            ApiRequest apiRequest;
            try {
                if (!route.open()) {
                    authorize(request);
                }
                byte[] body = ByteBufUtil.getBytes(request.content());
                if (body.length > 0) {
                    requireJson(request);
                }
                // The headers are the request's own, not pooled: they outlive its release, so they are not copied.
                apiRequest = new ApiRequest(request.method(), path, found.parameters(), query, body, request.headers());
            } catch (ApiException e) {
                complete(ctx, exchange, route.template(), error(e));
                return;
            }
            if (!route.blocking()) {
                deliver(ctx, exchange, route, handle(route, apiRequest));
                return;
            }
            try {
                workers.execute(() -> {
                    Object answer = handle(route, apiRequest);
                    try {
                        ctx.executor().execute(() -> deliver(ctx, exchange, route, answer));
                    } catch (RejectedExecutionException e) {
                        // The event loop has stopped: the connection is gone with it.
                        ReferenceCountUtil.release(answer);
                    }
                });
            } catch (RejectedExecutionException e) {
                complete(ctx, exchange, route.template(), error(new ApiException(HttpResponseStatus.SERVICE_UNAVAILABLE,
                        "shutting_down", "ferryd is shutting down")));
            }
        }

        /** The route's answer: a full response, or a stream. Runs where the route runs. */
        private Object handle(Router.Route route, ApiRequest request) {
            ApiResponse response;
            try {
                response = route.handler().handle(request);
            } catch (ApiException e) {
                return error(e);
            } catch (RuntimeException e) {
                LOG.error("{} {} failed", request.method(), request.path(), e);
                return error(new ApiException(HttpResponseStatus.INTERNAL_SERVER_ERROR, "internal_error",
                        "ferryd failed to handle the request; the daemon log has the details"));
            }
            return response instanceof ApiResponse.Stream stream ? stream : toHttp(response);
        }

        /** On the event loop: writes the answer, or starts the stream. */
        private void deliver(ChannelHandlerContext ctx, Exchange exchange, Router.Route route, Object answer) {
            if (!(answer instanceof ApiResponse.Stream stream)) {
                complete(ctx, exchange, route.template(), (FullHttpResponse) answer);
                return;
            }
            if (closed) {
                return;
            }
            // The stream owns the connection until it closes it: nothing after this request is answered.
            lastTaken = true;
            guard.stop();
            releaseWaiting();
            HttpResponse head = new DefaultHttpResponse(HttpVersion.HTTP_1_1, stream.status());
            head.headers().set(HttpHeaderNames.CONTENT_TYPE, stream.contentType());
            head.headers().set(HttpHeaderNames.CACHE_CONTROL, HttpHeaderValues.NO_CACHE);
            HttpUtil.setTransferEncodingChunked(head, true);
            ctx.writeAndFlush(head);
            record(exchange.startNanos(), exchange.method(), route.template(), stream.status());
            stream.writer().accept(ctx);
        }

        /** Answers a request that reached the application (timed by route), then goes on with the next. */
        private void complete(ChannelHandlerContext ctx, Exchange exchange, String template, FullHttpResponse response) {
            record(exchange.startNanos(), exchange.method(), template, response.status());
            write(ctx, response, exchange.keepAlive(), exchange.version());
        }

        /** Answers for the server's guards: logged (rate-limited), not timed. */
        private void refuse(ChannelHandlerContext ctx, Refusal refusal, HttpVersion version) {
            ApiException e = refusal.error();
            refusals.log(() -> "refused API request from " + ctx.channel().remoteAddress() + ": " + e.status().code() + " "
                    + e.code() + ": " + e.getMessage());
            write(ctx, error(e), !refusal.close(), version);
        }

        private void write(ChannelHandlerContext ctx, FullHttpResponse response, boolean keepAlive, HttpVersion version) {
            if (closed) {
                response.release();
                return;
            }
            response.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, response.content().readableBytes());
            if (!keepAlive) {
                response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            } else if (version.minorVersion() == 0) {
                // An HTTP/1.0 client keeps the connection only when told so.
                response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
            }
            if (!keepAlive) {
                // The last answer: the connection closes once it is written, and nothing after it is answered.
                closed = true;
                releaseWaiting();
                ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
                return;
            }
            answering = false;
            ctx.writeAndFlush(response).addListener(f -> {
                // Idle, so evictable, only once its answer is out: closing it then loses nothing.
                if (!answering && waiting.isEmpty() && !guard.arriving() && !closed && ctx.channel().isActive()) {
                    connection.idle();
                }
            });
            next(ctx);
        }

        private void releaseWaiting() {
            Object entry;
            while ((entry = waiting.poll()) != null) {
                ReferenceCountUtil.release(entry);
            }
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            next(ctx);
            ctx.fireChannelWritabilityChanged();
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            closed = true;
            releaseWaiting();
            ctx.fireChannelInactive();
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
        // Straight into a pooled buffer: an answer is not built in an array, copied and dropped.
        ByteBuf content = ByteBufAllocator.DEFAULT.buffer(1024);
        try {
            Json.mapper().writeValue((OutputStream) new ByteBufOutputStream(content), body);
        } catch (IOException | RuntimeException e) {
            content.release();
            throw new IllegalStateException("response body not serializable", e);
        }
        FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, content);
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
