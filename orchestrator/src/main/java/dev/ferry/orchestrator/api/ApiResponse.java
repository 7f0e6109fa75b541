package dev.ferry.orchestrator.api;

import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http.HttpResponseStatus;
import java.util.function.Consumer;

/** What a route returns. */
public sealed interface ApiResponse {

    HttpResponseStatus status();

    /** A JSON body. */
    record JsonBody(HttpResponseStatus status, Object body) implements ApiResponse {
    }

    /** A text body of the given content type (metrics). */
    record Text(HttpResponseStatus status, String contentType, String body) implements ApiResponse {
    }

    /** No body (204). */
    record Empty(HttpResponseStatus status) implements ApiResponse {
    }

    /**
     * A stream the route writes itself after the headers (server-sent events); it owns the channel
     * until it closes it.
     */
    record Stream(HttpResponseStatus status, String contentType, Consumer<ChannelHandlerContext> writer) implements ApiResponse {
    }

    static ApiResponse ok(Object body) {
        return new JsonBody(HttpResponseStatus.OK, body);
    }

    static ApiResponse created(Object body) {
        return new JsonBody(HttpResponseStatus.CREATED, body);
    }

    static ApiResponse accepted(Object body) {
        return new JsonBody(HttpResponseStatus.ACCEPTED, body);
    }

    static ApiResponse noContent() {
        return new Empty(HttpResponseStatus.NO_CONTENT);
    }
}
