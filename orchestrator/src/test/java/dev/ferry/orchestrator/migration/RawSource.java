package dev.ferry.orchestrator.migration;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.device.vm.Vm;
import dev.ferry.orchestrator.TestDaemons;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.compression.PageCodec;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.ProtocolClient;
import dev.ferry.protocol.net.ProtocolConfig;
import dev.ferry.protocol.net.Transport;
import io.netty.channel.EventLoopGroup;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;

/**
 * Two daemons and a protocol client of the test's own, which speaks to the destination daemon frame by
 * frame as a source of another build, or a hostile one, would: what it sends is up to the test.
 */
final class RawSource implements AutoCloseable {
    final TestDaemons daemons;
    private final EventLoopGroup group;
    private final ProtocolClient client;

    RawSource() throws Exception {
        daemons = new TestDaemons();
        group = Transport.newGroup(1, "test-source");
        client = new ProtocolClient(ProtocolConfig.of(TestDaemons.TOKEN.getBytes(StandardCharsets.UTF_8), null), group);
    }

    /** Opens a channel of {@code session} to the destination; every frame it receives goes to {@code replies}. */
    FrameChannel connect(SessionId session, ChannelRole role, int index, BlockingQueue<Frame> replies) throws Exception {
        return client.connect(daemons.destination.migration().resolve(), session, role, index, (channel, frame) -> replies.add(frame))
                .get(30, TimeUnit.SECONDS);
    }

    /**
     * The VM description a source of this build sends for {@code vm}, as JSON: default limits, the VM's
     * vCPUs stopped, with {@code dryRun} and {@code compression} as given.
     */
    static byte[] description(Vm vm, String migration, boolean dryRun, PageCodec compression) {
        MigrationPolicy policy = new MigrationPolicy(vm.id(), null, MigrationPolicy.DEFAULT_DOWNTIME_LIMIT_MS, 0, 1,
                MigrationPolicy.DEFAULT_MAX_ITERATIONS, 60_000, true, false, dryRun, false, false, compression);
        return VmManifest.of(vm, false, migration, policy, null).toJson();
    }

    /** The destination's view of its migration: once it exists, or with {@code ended}, once it has ended. */
    JsonNode destinationSide(boolean ended) {
        JsonNode[] incoming = new JsonNode[1];
        Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> {
            incoming[0] = daemons.destinationApi.get("/v1/migrations").path("migrations").path(0);
            String phase = incoming[0].path("phase").asText();
            return !ended && !incoming[0].isMissingNode() || phase.equals("failed") || phase.equals("completed");
        });
        return incoming[0];
    }

    @Override
    public void close() {
        daemons.close();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
