package dev.ferry.orchestrator.api;

import dev.ferry.orchestrator.Refusal;
import io.netty.handler.codec.http.HttpMethod;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Routes by method and path template ({@code /v1/vms/{vm}/devices/{dev}}). A path that matches a
 * template under another method is a 405 with the methods it has; no match at all is a 404.
 */
public final class Router {
    /** Handles a request. */
    @FunctionalInterface
    public interface Handler {
        ApiResponse handle(ApiRequest request);
    }

    /**
     * @param blocking whether the handler may block (device quiescence, digests): it then runs on the
     *                 API's worker threads, never on an event loop
     * @param open     whether it is served without a token ({@code /v1/health}, {@code /metrics})
     */
    public record Route(HttpMethod method, String template, Handler handler, boolean blocking, boolean open) {
    }

    /** The outcome of matching. */
    public sealed interface Match {
    }

    public record Found(Route route, Map<String, String> parameters) implements Match {
    }

    public record WrongMethod(Set<HttpMethod> allowed) implements Match {
    }

    public record NotFound() implements Match {
    }

    /** A route with its template split once, not on every request. */
    private record Entry(Route route, String[] segments) {
    }

    private final List<Entry> entries = new ArrayList<>();

    public Router add(HttpMethod method, String template, Handler handler) {
        return add(new Route(method, template, handler, false, false));
    }

    public Router addBlocking(HttpMethod method, String template, Handler handler) {
        return add(new Route(method, template, handler, true, false));
    }

    public Router add(Route route) {
        Handler handler = route.handler();
        // The domain refuses in its own terms; here, once for every route, they become HTTP errors.
        route = new Route(route.method(), route.template(), request -> {
            try {
                return handler.handle(request);
            } catch (Refusal refusal) {
                throw ApiException.of(refusal);
            }
        }, route.blocking(), route.open());
        for (Entry existing : entries) {
            if (existing.route().method().equals(route.method()) && existing.route().template().equals(route.template())) {
                throw new IllegalArgumentException("route " + route.method() + " " + route.template() + " defined twice");
            }
        }
        entries.add(new Entry(route, route.template().substring(1).split("/", -1)));
        return this;
    }

    public List<Route> routes() {
        return entries.stream().map(Entry::route).toList();
    }

    public Match match(HttpMethod method, String path) {
        if (!path.startsWith("/")) {
            return new NotFound();
        }
        String[] parts = path.substring(1).split("/", -1);
        Set<HttpMethod> allowed = null;
        for (Entry entry : entries) {
            if (!matches(entry.segments(), parts)) {
                continue;
            }
            Route route = entry.route();
            if (route.method().equals(method)) {
                return new Found(route, bind(entry.segments(), parts));
            }
            if (allowed == null) {
                allowed = new LinkedHashSet<>();
            }
            allowed.add(route.method());
        }
        return allowed == null ? new NotFound() : new WrongMethod(allowed);
    }

    private static boolean matches(String[] template, String[] parts) {
        if (template.length != parts.length) {
            return false;
        }
        for (int i = 0; i < template.length; i++) {
            if (isParameter(template[i]) ? parts[i].isEmpty() : !template[i].equals(parts[i])) {
                return false;
            }
        }
        return true;
    }

    /** The parameters of a path that {@link #matches} the template. */
    private static Map<String, String> bind(String[] template, String[] parts) {
        Map<String, String> parameters = new HashMap<>(4);
        for (int i = 0; i < template.length; i++) {
            if (isParameter(template[i])) {
                parameters.put(template[i].substring(1, template[i].length() - 1), parts[i]);
            }
        }
        return parameters;
    }

    private static boolean isParameter(String segment) {
        return segment.startsWith("{") && segment.endsWith("}");
    }
}
