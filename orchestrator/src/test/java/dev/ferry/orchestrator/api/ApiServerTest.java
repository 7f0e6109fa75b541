package dev.ferry.orchestrator.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.config.Endpoint;
import dev.ferry.protocol.net.RateLimitedLog;
import dev.ferry.protocol.net.Transport;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.HttpMethod;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The HTTP server's own guards, on a router made for the test, over raw sockets on loopback. A test
 * that needs clients on different addresses binds them to 127.0.0.2 and up: on Linux the whole of
 * 127.0.0.0/8 is loopback.
 */
class ApiServerTest {
    private static final Pattern CONTENT_LENGTH = Pattern.compile("(?i)content-length: (\\d+)");

    private final CountDownLatch release = new CountDownLatch(1);
    private final List<String> refusalLog = new CopyOnWriteArrayList<>();
    private final List<ApiServer> servers = new ArrayList<>();
    private EventLoopGroup group;
    private ExecutorService workers;
    private ScheduledExecutorService trickler;
    private ApiServer server;

    @BeforeEach
    void start() throws Exception {
        group = Transport.newGroup(2, "test-api");
        workers = Executors.newFixedThreadPool(2);
        trickler = Executors.newSingleThreadScheduledExecutor();
        server = server(ApiServer.Limits.DEFAULT.withRequestTimeout(Duration.ofMillis(200)));
    }

    @AfterEach
    void stop() {
        release.countDown();
        trickler.shutdownNow();
        servers.forEach(ApiServer::stop);
        workers.shutdownNow();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    private Router router() {
        return new Router()
                .add(HttpMethod.GET, "/v1/bug", request -> {
                    throw new IllegalStateException("a bug with a secret inside");
                })
                .addBlocking(HttpMethod.GET, "/v1/slow-bug", request -> {
                    throw new NullPointerException("another bug");
                })
                .add(HttpMethod.GET, "/v1/ok", request -> ApiResponse.ok(Map.of("ok", true, "n", String.valueOf(request.query("n")))))
                .addBlocking(HttpMethod.GET, "/v1/slow", request -> {
                    try {
                        release.await(30, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    return ApiResponse.ok(Map.of("slow", true));
                });
    }

    private ApiServer server(ApiServer.Limits limits) throws Exception {
        return server(limits, new RateLimitedLog(refusalLog::add, 1000, Duration.ofHours(1)));
    }

    private ApiServer server(ApiServer.Limits limits, RateLimitedLog log) throws Exception {
        ApiServer started = new ApiServer(new Endpoint("127.0.0.1", 0), new byte[0], router(), group, workers,
                new SimpleMeterRegistry(), limits, log);
        started.start();
        servers.add(started);
        return started;
    }

    private HttpResponse<String> get(String path) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.address().getPort() + path))
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    /** A connection to {@code to}'s API from the loopback address {@code from}. */
    private static Socket connect(String from, ApiServer to) throws IOException {
        Socket socket = new Socket();
        socket.bind(new InetSocketAddress(from, 0));
        socket.connect(new InetSocketAddress("127.0.0.1", to.address().getPort()), 10_000);
        socket.setSoTimeout(30_000);
        return socket;
    }

    private static void send(Socket socket, String text) throws IOException {
        socket.getOutputStream().write(text.getBytes(StandardCharsets.ISO_8859_1));
        socket.getOutputStream().flush();
    }

    private static String request(String target, String connection) {
        return "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: " + connection + "\r\n\r\n";
    }

    /** The next response's head and body (read to its Content-Length), or what came before the end of the stream. */
    private static String read(Socket socket) throws IOException {
        InputStream in = socket.getInputStream();
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int b = in.read();
            if (b < 0) {
                return head.toString();
            }
            head.append((char) b);
        }
        Matcher length = CONTENT_LENGTH.matcher(head);
        assertThat(length.find()).as(head.toString()).isTrue();
        return head + new String(in.readNBytes(Integer.parseInt(length.group(1))), StandardCharsets.UTF_8);
    }

    private static String exchange(Socket socket, String connection) throws IOException {
        send(socket, request("/v1/ok", connection));
        return read(socket);
    }

    private static JsonNode body(String response) throws IOException {
        return Json.mapper().readTree(response.substring(response.indexOf("\r\n\r\n") + 4));
    }

    private static void assertClosed(Socket socket) throws IOException {
        assertThat(socket.getInputStream().read()).as("the server closed the connection").isEqualTo(-1);
    }

    @Test
    void status500ForABugWithoutAStackTraceOrItsMessage() throws Exception {
        for (String path : new String[] {"/v1/bug", "/v1/slow-bug"}) {
            HttpResponse<String> response = get(path);
            assertThat(response.statusCode()).isEqualTo(500);
            assertThat(Json.mapper().readTree(response.body()).path("error").path("code").asText()).isEqualTo("internal_error");
            assertThat(response.body()).doesNotContain("secret").doesNotContain("Exception").doesNotContain("\tat ");
        }
        assertThat(get("/v1/ok").statusCode()).as("the server goes on serving").isEqualTo(200);
    }

    @Test
    void aBodyThatNeverEndsIsAnswered408AndClosed() throws Exception {
        try (Socket socket = connect("127.0.0.1", server)) {
            send(socket, "POST /v1/ok HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
            String response = read(socket);
            assertThat(response).startsWith("HTTP/1.1 408").contains("request_timeout");
            assertThat(body(response).path("error").path("message").asText()).contains("within 200 ms");
            assertClosed(socket);
        }
        assertThat(get("/v1/ok").statusCode()).isEqualTo(200);
    }

    /**
     * The deadline covers the head too, and counts from a request's first byte, not from each byte: a
     * client that trickles its headers, even a byte every 20 ms, is cut off, here on a connection that
     * had a request answered before.
     */
    @Test
    void headersTrickledByteByByteAreCutOffAtTheDeadline() throws Exception {
        try (Socket socket = connect("127.0.0.1", server)) {
            assertThat(exchange(socket, "keep-alive")).startsWith("HTTP/1.1 200");
            byte[] head = ("GET /v1/ok HTTP/1.1\r\nHost: x\r\nX-Trickle: " + "a".repeat(8000)).getBytes(StandardCharsets.US_ASCII);
            AtomicInteger sent = new AtomicInteger();
            OutputStream out = socket.getOutputStream();
            trickler.scheduleAtFixedRate(() -> {
                try {
                    out.write(head[sent.getAndIncrement() % head.length]);
                    out.flush();
                } catch (IOException closed) {
                    throw new IllegalStateException("the server closed the connection", closed);
                }
            }, 0, 20, TimeUnit.MILLISECONDS);
            String response = read(socket);
            assertThat(response).startsWith("HTTP/1.1 408").contains("request_timeout").containsIgnoringCase("connection: close");
            assertThat(sent.get()).as("bytes trickled before the answer").isGreaterThan(1);
            assertClosed(socket);
        }
        assertThat(refusalLog).anyMatch(line -> line.startsWith("refused API request from /127.0.0.1:") && line.contains("408"));
    }

    @Test
    void garbageIsABadRequest() throws Exception {
        try (Socket socket = connect("127.0.0.1", server)) {
            send(socket, "\u0001\u0002 not http at all\r\n\r\n");
            String response = read(socket);
            assertThat(response).startsWith("HTTP/1.1 400").contains("bad_http");
            assertClosed(socket);
        }
    }

    @Test
    void onlyHttp10And11AreServedOtherVersionsAre505() throws Exception {
        for (String version : new String[] {"HTTP/2.0", "HTTP/9.9", "HTTP/1.2", "HTTP/0.9"}) {
            try (Socket socket = connect("127.0.0.1", server)) {
                send(socket, "GET /v1/ok " + version + "\r\nHost: x\r\n\r\n");
                String response = read(socket);
                assertThat(response).as(version).startsWith("HTTP/1.1 505");
                JsonNode error = body(response).path("error");
                assertThat(error.path("code").asText()).isEqualTo("http_version_not_supported");
                assertThat(error.path("message").asText()).contains(version);
                assertThat(error.path("details").path("version").asText()).isEqualTo(version);
                assertClosed(socket);
            }
        }
        // HTTP/1.0 is served, and closed after the answer unless it asks to keep the connection.
        try (Socket socket = connect("127.0.0.1", server)) {
            send(socket, "GET /v1/ok HTTP/1.0\r\n\r\n");
            assertThat(read(socket)).startsWith("HTTP/1.1 200").containsIgnoringCase("connection: close");
            assertClosed(socket);
        }
        try (Socket socket = connect("127.0.0.1", server)) {
            send(socket, "GET /v1/ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            assertThat(read(socket)).startsWith("HTTP/1.1 200").containsIgnoringCase("connection: keep-alive");
            assertThat(exchange(socket, "close")).startsWith("HTTP/1.1 200");
        }
    }

    @Test
    void aBadPercentEscapeIsABadRequestAndTheConnectionGoesOn() throws Exception {
        try (Socket socket = connect("127.0.0.1", server)) {
            for (String target : new String[] {"/v1/%zz", "/v1/ok?n=%G1", "/v1/ok%"}) {
                send(socket, request(target, "keep-alive"));
                String response = read(socket);
                assertThat(response).as(target).startsWith("HTTP/1.1 400");
                assertThat(body(response).path("error").path("code").asText()).isEqualTo("bad_uri");
            }
            assertThat(exchange(socket, "close")).startsWith("HTTP/1.1 200");
            assertClosed(socket);
        }
    }

    /**
     * Pipelined requests are answered in the order sent, although the first is answered on a worker
     * after the others could have been, and the one that closes the connection is answered last.
     */
    @Test
    void pipelinedRequestsAreAnsweredInOrderAndAllBeforeTheConnectionCloses() throws Exception {
        try (Socket socket = connect("127.0.0.1", server)) {
            send(socket, request("/v1/slow", "keep-alive") + request("/v1/ok?n=2", "keep-alive") + request("/v1/ok?n=3", "close"));
            release.countDown();
            String first = read(socket);
            String second = read(socket);
            String third = read(socket);
            assertThat(body(first).path("slow").asBoolean()).as(first).isTrue();
            assertThat(body(second).path("n").asText()).as(second).isEqualTo("2");
            assertThat(body(third).path("n").asText()).as(third).isEqualTo("3");
            assertThat(third).containsIgnoringCase("connection: close");
            assertClosed(socket);
        }
    }

    @Test
    void aBurstOfPipelinedRequestsIsAnsweredWholeAndInOrder() throws Exception {
        // More than a connection may have waiting before it stops reading, fewer than one read can hold.
        int count = 100;
        StringBuilder burst = new StringBuilder(request("/v1/slow", "keep-alive"));
        for (int i = 1; i < count; i++) {
            burst.append(request("/v1/ok?n=" + i, i == count - 1 ? "close" : "keep-alive"));
        }
        try (Socket socket = connect("127.0.0.1", server)) {
            send(socket, burst.toString());
            release.countDown();
            assertThat(body(read(socket)).path("slow").asBoolean()).isTrue();
            for (int i = 1; i < count; i++) {
                String response = read(socket);
                assertThat(response).startsWith("HTTP/1.1 200");
                assertThat(body(response).path("n").asText()).isEqualTo(String.valueOf(i));
            }
            assertClosed(socket);
        }
    }

    /**
     * While requests wait to be answered the server stops reading, and the request behind them is not
     * to blame: its deadline stops meanwhile. Here it waits three deadlines behind a slow request, then
     * its body, sent meanwhile, is read and the request answered.
     */
    @Test
    void aRequestBehindSlowOnesIsNotTimedOutForTheWait() throws Exception {
        StringBuilder burst = new StringBuilder(request("/v1/slow", "keep-alive"));
        for (int i = 1; i <= ApiServer.PIPELINE_PAUSE + 4; i++) {
            burst.append(request("/v1/ok?n=" + i, "keep-alive"));
        }
        burst.append("POST /v1/ok HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{");
        try (Socket socket = connect("127.0.0.1", server)) {
            send(socket, burst.toString());
            await().pollDelay(Duration.ofMillis(600)).atMost(Duration.ofSeconds(10)).until(() -> true);
            send(socket, "}");
            release.countDown();
            assertThat(body(read(socket)).path("slow").asBoolean()).isTrue();
            for (int i = 1; i <= ApiServer.PIPELINE_PAUSE + 4; i++) {
                assertThat(body(read(socket)).path("n").asText()).isEqualTo(String.valueOf(i));
            }
            String last = read(socket);
            assertThat(last).as("answered, not timed out").startsWith("HTTP/1.1 405").contains("method_not_allowed");
        }
    }

    /** Runs what it is given only when the test says so, on the test's thread. */
    private static final class ManualExecutor extends java.util.concurrent.AbstractExecutorService {
        private final java.util.ArrayDeque<Runnable> tasks = new java.util.ArrayDeque<>();

        @Override
        public void execute(Runnable task) {
            tasks.add(task);
        }

        void runAll() {
            Runnable task;
            while ((task = tasks.poll()) != null) {
                task.run();
            }
        }

        @Override
        public void shutdown() {
        }

        @Override
        public List<Runnable> shutdownNow() {
            return List.of();
        }

        @Override
        public boolean isShutdown() {
            return false;
        }

        @Override
        public boolean isTerminated() {
            return false;
        }

        @Override
        public boolean awaitTermination(long timeout, TimeUnit unit) {
            return true;
        }
    }

    /**
     * More requests at once than a connection may have waiting: those are answered, then 429 and closed.
     * On an embedded channel, where one read can be as large as the test likes; the worker that answers
     * the first request runs when the test says, so everything else has arrived by then.
     */
    @Test
    void moreThanTheMostPipelinedRequestsAreTooMany() {
        ManualExecutor worker = new ManualExecutor();
        ApiServer embedded = new ApiServer(new Endpoint("127.0.0.1", 0), new byte[0], router(), group, worker,
                new SimpleMeterRegistry(), ApiServer.Limits.DEFAULT);
        EmbeddedChannel channel = new EmbeddedChannel();
        embedded.accept(channel);
        StringBuilder burst = new StringBuilder(request("/v1/slow", "keep-alive"));
        for (int i = 0; i < ApiServer.MAX_PIPELINED + 10; i++) {
            burst.append(request("/v1/ok?n=" + i, "keep-alive"));
        }
        channel.writeInbound(Unpooled.copiedBuffer(burst, StandardCharsets.US_ASCII));
        assertThat(channel.config().isAutoRead()).as("it stopped reading").isFalse();
        release.countDown();
        worker.runAll();
        channel.runPendingTasks();
        StringBuilder out = new StringBuilder();
        ByteBuf written;
        while ((written = channel.readOutbound()) != null) {
            out.append(written.toString(StandardCharsets.UTF_8));
            written.release();
        }
        List<String> statuses = Pattern.compile("HTTP/1\\.1 (\\d+)").matcher(out).results().map(m -> m.group(1)).toList();
        assertThat(statuses).hasSize(1 + ApiServer.MAX_PIPELINED + 1);
        assertThat(statuses.subList(0, 1 + ApiServer.MAX_PIPELINED)).containsOnly("200");
        assertThat(statuses).last().isEqualTo("429");
        assertThat(out).contains("too_many_requests").contains("\"n\":\"" + (ApiServer.MAX_PIPELINED - 1) + "\"")
                .doesNotContain("\"n\":\"" + ApiServer.MAX_PIPELINED + "\"");
        assertThat(channel.isOpen()).as("closed after the 429").isFalse();
        channel.finishAndReleaseAll();
    }

    /**
     * A client that holds connections with requests it never finishes, from one address, gets no more
     * than its share; a client on another address is served meanwhile. Once every connection is busy,
     * the next is answered 503 whatever its address.
     */
    @Test
    void aTricklingClientCannotLockOutAnotherAddress() throws Exception {
        ApiServer small = server(ApiServer.Limits.DEFAULT.withRequestTimeout(Duration.ofMinutes(5)).withConnections(8, 4));
        List<Socket> held = new ArrayList<>();
        try {
            for (int i = 0; i < 4; i++) {
                Socket socket = connect("127.0.0.2", small);
                held.add(socket);
                // Answered, so surely admitted before the next one connects; then a request that never ends.
                assertThat(exchange(socket, "keep-alive")).startsWith("HTTP/1.1 200");
                send(socket, "GET /v1/ok HTTP/1.1\r\nHost: x\r\nX-Trickle: a");
            }
            await().atMost(Duration.ofSeconds(10)).until(() -> small.idleConnections() == 0);
            try (Socket fifth = connect("127.0.0.2", small)) {
                String refused = exchange(fifth, "keep-alive");
                assertThat(refused).startsWith("HTTP/1.1 503");
                JsonNode error = body(refused).path("error");
                assertThat(error.path("code").asText()).isEqualTo("too_many_connections");
                assertThat(error.path("details").path("scope").asText()).isEqualTo("address");
                assertThat(error.path("details").path("limit").asInt()).isEqualTo(4);
                assertThat(error.path("message").asText()).contains("127.0.0.2");
                assertClosed(fifth);
            }
            try (Socket other = connect("127.0.0.1", small)) {
                assertThat(exchange(other, "close")).as("another address is served").startsWith("HTTP/1.1 200");
            }
            for (int i = 0; i < 4; i++) {
                Socket socket = connect("127.0.0.3", small);
                held.add(socket);
                assertThat(exchange(socket, "keep-alive")).startsWith("HTTP/1.1 200");
                send(socket, "GET /v1/ok HTTP/1.1\r\nHost: x\r\nX-Trickle: a");
            }
            await().atMost(Duration.ofSeconds(10)).until(() -> small.idleConnections() == 0);
            try (Socket full = connect("127.0.0.1", small)) {
                String refused = exchange(full, "keep-alive");
                assertThat(refused).startsWith("HTTP/1.1 503");
                assertThat(body(refused).path("error").path("details").path("scope").asText()).isEqualTo("server");
                assertThat(body(refused).path("error").path("message").asText()).contains("8 connections");
            }
            // The held requests are still open: finishing one gets its answer.
            send(held.get(0), "\r\n\r\n");
            assertThat(read(held.get(0))).startsWith("HTTP/1.1 200");
        } finally {
            for (Socket socket : held) {
                socket.close();
            }
        }
        assertThat(refusalLog).anyMatch(line -> line.startsWith("refused API connection from /127.0.0.2:")
                && line.contains("too_many_connections"));
    }

    @Test
    void whenTheServerIsFullTheConnectionIdleLongestMakesRoom() throws Exception {
        ApiServer small = server(ApiServer.Limits.DEFAULT.withConnections(2, 2));
        try (Socket idle = connect("127.0.0.2", small); Socket busy = connect("127.0.0.3", small)) {
            assertThat(exchange(idle, "keep-alive")).startsWith("HTTP/1.1 200");
            await().atMost(Duration.ofSeconds(10)).until(() -> small.idleConnections() == 2);
            assertThat(exchange(busy, "keep-alive")).startsWith("HTTP/1.1 200");
            send(busy, "GET /v1/ok?n=busy HTTP/1.1\r\nHost: x\r\n");
            await().atMost(Duration.ofSeconds(10)).until(() -> small.idleConnections() == 1);
            try (Socket newcomer = connect("127.0.0.1", small)) {
                assertThat(exchange(newcomer, "close")).startsWith("HTTP/1.1 200");
            }
            assertClosed(idle);
            send(busy, "\r\n");
            assertThat(body(read(busy)).path("n").asText()).as("the busy one was kept").isEqualTo("busy");
        }
        assertThat(refusalLog).anyMatch(line -> line.startsWith("closed idle API connection from /127.0.0.2:"));
    }

    @Test
    void aConnectionOverTheLimitIsAnswered503AndTheLimitFreesUpWhenOneCloses() throws Exception {
        ApiServer small = server(ApiServer.Limits.DEFAULT.withRequestTimeout(Duration.ofMinutes(5)).withConnections(2, 2));
        Socket first = connect("127.0.0.1", small);
        try (Socket second = connect("127.0.0.1", small)) {
            assertThat(exchange(first, "keep-alive")).startsWith("HTTP/1.1 200");
            assertThat(exchange(second, "keep-alive")).startsWith("HTTP/1.1 200");
            send(first, "GET /v1/ok HTTP/1.1\r\n");
            send(second, "GET /v1/ok HTTP/1.1\r\n");
            await().atMost(Duration.ofSeconds(10)).until(() -> small.idleConnections() == 0);
            try (Socket third = connect("127.0.0.1", small)) {
                String refused = exchange(third, "keep-alive");
                assertThat(refused).startsWith("HTTP/1.1 503").contains("too_many_connections").contains("2 connections");
                assertClosed(third);
            }
            send(second, "Host: x\r\n\r\n");
            assertThat(read(second)).as("the held ones go on").startsWith("HTTP/1.1 200");
            first.close();
            await().atMost(Duration.ofSeconds(10)).until(() -> {
                try (Socket next = connect("127.0.0.1", small)) {
                    return exchange(next, "close").startsWith("HTTP/1.1 200");
                }
            });
        } finally {
            first.close();
        }
    }

    @Test
    void refusalsAreLoggedAtMostSoManyTimesAnIntervalWithACountOfTheRest() throws Exception {
        List<String> lines = new CopyOnWriteArrayList<>();
        java.util.concurrent.atomic.AtomicLong now = new java.util.concurrent.atomic.AtomicLong();
        RateLimitedLog log = new RateLimitedLog(lines::add, 3, Duration.ofSeconds(10), now::get);
        ApiServer logged = server(ApiServer.Limits.DEFAULT, log);
        // Each line is written before its answer, so it is there once the answer has been read.
        for (int i = 0; i < 10; i++) {
            try (Socket socket = connect("127.0.0.1", logged)) {
                send(socket, "GET /v1/ok HTTP/9.9\r\n\r\n");
                assertThat(read(socket)).startsWith("HTTP/1.1 505");
            }
        }
        assertThat(lines).hasSize(3).allMatch(line -> line.contains("505 http_version_not_supported"));
        assertThat(log.suppressedTotal()).isEqualTo(7);
        now.addAndGet(Duration.ofSeconds(10).toNanos());
        try (Socket socket = connect("127.0.0.1", logged)) {
            send(socket, "\u0001 garbage\r\n\r\n");
            assertThat(read(socket)).startsWith("HTTP/1.1 400");
        }
        assertThat(lines).hasSize(4).last().asString().contains("bad_http").endsWith("(7 similar lines not logged before this one)");
    }
}
