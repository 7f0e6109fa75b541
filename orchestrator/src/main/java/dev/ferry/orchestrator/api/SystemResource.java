package dev.ferry.orchestrator.api;

import dev.ferry.orchestrator.metrics.FerryMetrics;
import dev.ferry.protocol.ProtocolVersion;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import java.util.LinkedHashMap;
import java.util.Map;

/** {@code /v1/health} and {@code /metrics}, both served without a token. */
public final class SystemResource {
    private static final String OPENMETRICS = "application/openmetrics-text";

    private final String version;
    private final FerryMetrics metrics;

    public SystemResource(String version, FerryMetrics metrics) {
        this.version = version;
        this.metrics = metrics;
    }

    public void register(Router router) {
        router.add(new Router.Route(HttpMethod.GET, "/v1/health", request -> {
            Map<String, Object> health = new LinkedHashMap<>();
            health.put("status", "ok");
            health.put("version", version);
            health.put("protocolVersion", ProtocolVersion.CURRENT);
            return ApiResponse.ok(health);
        }, false, true));
        router.add(new Router.Route(HttpMethod.GET, "/metrics", request -> {
            String accept = request.header(HttpHeaderNames.ACCEPT);
            boolean open = accept != null && accept.contains(OPENMETRICS);
            String type = open ? OPENMETRICS + "; version=1.0.0; charset=utf-8" : "text/plain; version=0.0.4; charset=utf-8";
            return new ApiResponse.Text(HttpResponseStatus.OK, type, metrics.scrape(open ? OPENMETRICS : "text/plain"));
        }, true, true));
    }
}
