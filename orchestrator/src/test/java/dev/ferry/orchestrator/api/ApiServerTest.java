package dev.ferry.orchestrator.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.ferry.orchestrator.config.Endpoint;
import dev.ferry.protocol.net.Transport;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.EventLoopGroup;
import io.netty.handler.codec.http.HttpMethod;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The HTTP server's own guards, on a router made for the test. */
class ApiServerTest {
    private EventLoopGroup group;
    private ExecutorService workers;
    private ApiServer server;

    @BeforeEach
    void start() throws Exception {
        group = Transport.newGroup(1, "test-api");
        workers = Executors.newFixedThreadPool(2);
        Router router = new Router()
                .add(HttpMethod.GET, "/v1/bug", request -> {
                    throw new IllegalStateException("a bug with a secret inside");
                })
                .addBlocking(HttpMethod.GET, "/v1/slow-bug", request -> {
                    throw new NullPointerException("another bug");
                })
                .add(HttpMethod.GET, "/v1/ok", request -> ApiResponse.ok(Map.of("ok", true)));
        server = new ApiServer(new Endpoint("127.0.0.1", 0), new byte[0], router, group, workers, new SimpleMeterRegistry(),
                java.time.Duration.ofMillis(200), ApiServer.MAX_CONNECTIONS);
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop();
        workers.shutdownNow();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    private HttpResponse<String> get(String path) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.address().getPort() + path))
                .build(), HttpResponse.BodyHandlers.ofString());
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
    void aRequestThatNeverEndsIsAnsweredAndClosed() throws Exception {
        try (Socket socket = new Socket("127.0.0.1", server.address().getPort())) {
            socket.setSoTimeout(30_000);
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/ok HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
                    .getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = socket.getInputStream();
            String response = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            assertThat(response).startsWith("HTTP/1.1 408").contains("request_timeout");
        }
        assertThat(get("/v1/ok").statusCode()).isEqualTo(200);
    }

    @Test
    void garbageIsABadRequest() throws Exception {
        try (Socket socket = new Socket("127.0.0.1", server.address().getPort())) {
            socket.setSoTimeout(30_000);
            socket.getOutputStream().write("\u0001\u0002 not http at all\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
            String response = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(response).startsWith("HTTP/1.1 400").contains("bad_http");
        }
    }

    /** One request on a raw connection; the response's head and body, read to its Content-Length. */
    private static String exchange(Socket socket, String connection) throws Exception {
        socket.setSoTimeout(30_000);
        socket.getOutputStream().write(("GET /v1/ok HTTP/1.1\r\nHost: x\r\nConnection: " + connection + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        InputStream in = socket.getInputStream();
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int b = in.read();
            if (b < 0) {
                return head.toString();
            }
            head.append((char) b);
        }
        Matcher length = Pattern.compile("(?i)content-length: (\\d+)").matcher(head);
        assertThat(length.find()).as(head.toString()).isTrue();
        return head + new String(in.readNBytes(Integer.parseInt(length.group(1))), StandardCharsets.UTF_8);
    }

    @Test
    void aConnectionOverTheLimitIsAnswered503AndTheLimitFreesUpWhenOneCloses() throws Exception {
        ApiServer small = new ApiServer(new Endpoint("127.0.0.1", 0), new byte[0],
                new Router().add(HttpMethod.GET, "/v1/ok", request -> ApiResponse.ok(Map.of("ok", true))), group, workers,
                new SimpleMeterRegistry(), java.time.Duration.ofSeconds(10), 2);
        small.start();
        int port = small.address().getPort();
        Socket first = new Socket("127.0.0.1", port);
        try (Socket second = new Socket("127.0.0.1", port)) {
            assertThat(exchange(first, "keep-alive")).startsWith("HTTP/1.1 200");
            assertThat(exchange(second, "keep-alive")).startsWith("HTTP/1.1 200");
            try (Socket third = new Socket("127.0.0.1", port)) {
                String refused = exchange(third, "keep-alive");
                assertThat(refused).startsWith("HTTP/1.1 503").contains("too_many_connections").contains("2 connections");
                assertThat(third.getInputStream().read()).as("closed after the answer").isEqualTo(-1);
            }
            assertThat(exchange(second, "keep-alive")).as("the held ones go on").startsWith("HTTP/1.1 200");
            first.close();
            await().atMost(java.time.Duration.ofSeconds(10)).until(() -> {
                try (Socket next = new Socket("127.0.0.1", port)) {
                    return exchange(next, "close").startsWith("HTTP/1.1 200");
                }
            });
        } finally {
            first.close();
            small.stop();
        }
    }
}
