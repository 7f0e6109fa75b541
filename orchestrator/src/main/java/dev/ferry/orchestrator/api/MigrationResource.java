package dev.ferry.orchestrator.api;

import dev.ferry.orchestrator.migration.Migration;
import dev.ferry.orchestrator.migration.MigrationManager;
import dev.ferry.orchestrator.migration.MigrationPolicy;
import dev.ferry.orchestrator.migration.MigrationTrace;
import dev.ferry.orchestrator.migration.MigrationView;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** {@code /v1/migrations}: start, list, show, cancel, the event stream and the trace. */
public final class MigrationResource {
    private final MigrationManager migrations;
    private final MigrationEvents events = new MigrationEvents();

    public MigrationResource(MigrationManager migrations) {
        this.migrations = migrations;
    }

    public void register(Router router) {
        router.addBlocking(HttpMethod.POST, "/v1/migrations", request -> {
            MigrationPolicy policy = MigrationPolicy.from(request.body(Requests.StartMigration.class));
            return ApiResponse.accepted(migrations.start(policy).view());
        });
        router.add(HttpMethod.GET, "/v1/migrations",
                request -> ApiResponse.ok(Map.of("migrations", migrations.list().stream().map(Migration::view).toList())));
        router.add(HttpMethod.GET, "/v1/migrations/{id}", request -> ApiResponse.ok(migrations.get(request.parameter("id")).view()));
        router.add(HttpMethod.PATCH, "/v1/migrations/{id}", request -> {
            Requests.UpdateMigration update = request.body(Requests.UpdateMigration.class);
            return ApiResponse.ok(migrations.update(request.parameter("id"),
                    MigrationPolicy.parameters(update.maxBandwidthBytesPerSecond(), update.downtimeLimitMs())).view());
        });
        router.addBlocking(HttpMethod.DELETE, "/v1/migrations/{id}",
                request -> ApiResponse.accepted(migrations.cancel(request.parameter("id")).view()));
        router.add(HttpMethod.GET, "/v1/migrations/{id}/events", this::events);
        router.add(HttpMethod.GET, "/v1/migrations/{id}/trace", this::trace);
    }

    private ApiResponse trace(ApiRequest request) {
        Migration migration = migrations.get(request.parameter("id"));
        MigrationTrace trace = migration.trace();
        String format = request.query("format");
        if (format == null || format.equals("json")) {
            return ApiResponse.ok(Map.of("events", trace.events(), "phases", trace.phases(), "spans", trace.spans()));
        }
        if (format.equals("chrome")) {
            MigrationView view = migration.view();
            Instant started = Instant.parse(view.startedAt());
            long origin = TimeUnit.SECONDS.toMicros(started.getEpochSecond()) + TimeUnit.NANOSECONDS.toMicros(started.getNano());
            return ApiResponse.ok(trace.chrome(migration.id(), view.role(), origin, view.totalTimeMs() * 1000, view.passes()));
        }
        throw ApiException.invalid("format is json or chrome, not '" + format + "'");
    }

    /**
     * Server-sent events: the migration's current state at once, then {@code phase} at each phase
     * change, {@code progress} four times a second, and {@code end} with the final state, after which
     * the stream closes. Every event has an id; {@code Last-Event-ID} resumes after it (see
     * {@link MigrationEvents}).
     */
    private ApiResponse events(ApiRequest request) {
        Migration migration = migrations.get(request.parameter("id"));
        MigrationEvents.Log log = events.of(migration);
        Long lastId = MigrationEvents.lastEventId(request.header("Last-Event-ID"));
        if (log.sawEnd(lastId)) {
            return ApiResponse.noContent();
        }
        return new ApiResponse.Stream(HttpResponseStatus.OK, "text/event-stream; charset=utf-8",
                ctx -> log.attach(ctx, migration, lastId));
    }
}
