package dev.ferry.orchestrator.api;

import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * {@code GET /ui/}: the daemon's live page, three files from the jar (an HTML page, its script and its
 * style) served without the token: they hold no data. The page reads the JSON API like any client,
 * with the token the operator gives it (see {@code ui/app.js}), so nothing of the daemon is shown
 * without it.
 */
public final class UiResource {
    private static final String PACKAGE = "/dev/ferry/orchestrator/ui/";

    private final String page = read("index.html");
    private final String script = read("app.js");
    private final String style = read("app.css");

    public void register(Router router) {
        router.add(new Router.Route(HttpMethod.GET, "/ui/", request -> text("text/html; charset=utf-8", page), false, true));
        // The same page without the slash: it names its files by absolute paths, so it works from either.
        router.add(new Router.Route(HttpMethod.GET, "/ui", request -> text("text/html; charset=utf-8", page), false, true));
        router.add(new Router.Route(HttpMethod.GET, "/ui/app.js",
                request -> text("text/javascript; charset=utf-8", script), false, true));
        router.add(new Router.Route(HttpMethod.GET, "/ui/app.css", request -> text("text/css; charset=utf-8", style), false, true));
    }

    private static ApiResponse text(String type, String body) {
        return new ApiResponse.Text(HttpResponseStatus.OK, type, body);
    }

    private static String read(String name) {
        try (InputStream in = UiResource.class.getResourceAsStream(PACKAGE + name)) {
            if (in == null) {
                throw new IllegalStateException("ui/" + name + " is missing from the jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
