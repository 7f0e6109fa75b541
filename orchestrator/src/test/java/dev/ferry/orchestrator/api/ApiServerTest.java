package dev.ferry.orchestrator.api;

import static org.assertj.core.api.Assertions.assertThat;

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
                java.time.Duration.ofMillis(200));
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
}
