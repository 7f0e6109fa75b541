package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import dev.ferry.orchestrator.TestDaemons;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PagesBuilder;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.ProtocolClient;
import dev.ferry.protocol.net.ProtocolConfig;
import dev.ferry.protocol.net.Transport;
import io.netty.channel.EventLoopGroup;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;

/**
 * The destination takes the source's chunks of memory without zeroing them, because the first pass
 * writes every page. A source whose first pass leaves pages out would leave old bytes in the VM:
 * the destination refuses it at the first iteration barrier and discards the VM.
 */
class PartialFirstPassTest {
    @Test
    void aFirstPassThatLeavesPagesOutIsRefusedAndTheCopyDiscarded() throws Exception {
        VmConfig config = new VmConfig("partial", 8L << 20, 1, InitialMemory.RANDOM, WorkloadConfig.IDLE, P2pPolicy.AUTO,
                List.of(DeviceConfig.of("serial0", DeviceKind.SERIAL)));
        EventLoopGroup group = Transport.newGroup(1, "test-source");
        try (TestDaemons daemons = new TestDaemons(); Vm vm = Vm.boot(config)) {
            ProtocolClient client = new ProtocolClient(ProtocolConfig.of(TestDaemons.TOKEN.getBytes(StandardCharsets.UTF_8), null),
                    group);
            SessionId session = SessionId.random();
            BlockingQueue<Frame> replies = new LinkedBlockingQueue<>();
            FrameChannel control = client.connect(daemons.destination.migration().resolve(), session, ChannelRole.CONTROL, 0,
                    (channel, frame) -> replies.add(frame)).get(30, TimeUnit.SECONDS);
            byte[] description = VmManifest.of(vm, false, "mig-partial", 60_000, null).toJson();
            control.send(new Frame.VmDescription(config.memoryBytes(), 4096, 1, description));
            assertThat(replies.poll(30, TimeUnit.SECONDS)).isInstanceOf(Frame.VmAccepted.class);
            FrameChannel data = client.connect(daemons.destination.migration().resolve(), session, ChannelRole.DATA, 0,
                    (channel, frame) -> { }).get(30, TimeUnit.SECONDS);

            // Iteration 0 with the first 10 pages of 2048.
            PagesBuilder builder = new PagesBuilder(data.channel().alloc(), 0);
            ByteBuffer page = ByteBuffer.allocate(4096);
            for (int i = 0; i < 10; i++) {
                vm.memory().readPage(i, page.clear());
                builder.addCopy(i, page.flip());
            }
            data.send(builder.build());
            data.send(new Frame.DataEnd(0, 10));
            control.send(new Frame.IterationEnd(0, 10, 10 * 4096));

            Frame answer = replies.poll(30, TimeUnit.SECONDS);
            assertThat(answer).isInstanceOf(Frame.Abort.class);
            Frame.Abort abort = (Frame.Abort) answer;
            assertThat(abort.code()).isEqualTo(ErrorCode.OUT_OF_ORDER);
            assertThat(abort.message()).contains("the first pass carried 10 pages of 2048");

            JsonNode[] incoming = new JsonNode[1];
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> {
                incoming[0] = daemons.destinationApi.get("/v1/migrations").path("migrations").path(0);
                return incoming[0].path("phase").asText().equals("failed");
            });
            assertThat(incoming[0].path("error").path("code").asText()).isEqualTo("protocol_error");
            assertThat(daemons.destinationApi.get("/v1/vms").path("vms")).as("the copy is discarded").isEmpty();
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }
}
