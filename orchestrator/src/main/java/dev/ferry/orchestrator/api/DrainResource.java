package dev.ferry.orchestrator.api;

import dev.ferry.orchestrator.drain.DrainManager;
import io.netty.handler.codec.http.HttpMethod;

/**
 * {@code /v1/drain}: start a host drain (202), show the one under way or the last one (404
 * {@code no_drain} before the first), cancel it (202; 409 {@code drain_finished} once it ended).
 */
public final class DrainResource {
    private final DrainManager drains;

    public DrainResource(DrainManager drains) {
        this.drains = drains;
    }

    public void register(Router router) {
        // Starting and cancelling migrations may wait on a VM's lock or a commit being written.
        router.addBlocking(HttpMethod.POST, "/v1/drain", request -> {
            Requests.StartDrain body = request.body(Requests.StartDrain.class);
            return ApiResponse.accepted(drains.start(body.destination(), body.maxParallel()));
        });
        router.add(HttpMethod.GET, "/v1/drain", request -> ApiResponse.ok(drains.current()));
        router.addBlocking(HttpMethod.DELETE, "/v1/drain", request -> ApiResponse.accepted(drains.cancel()));
    }
}
