package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import dev.ferry.orchestrator.TestDaemons;
import dev.ferry.orchestrator.api.Json;
import dev.ferry.orchestrator.vm.VmManager;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.compression.PageCodec;
import dev.ferry.protocol.net.FrameChannel;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * F8 from the destination's side, against a source of another build: a description whose device is
 * in a data format version this daemon does not read, or configured in a way it cannot host, is
 * refused with VM_REFUSED naming the device and the field, before anything is allocated, in a dry run
 * as in a real migration. (Refusal by kind, between two daemons, is in DeviceHeavyTest.)
 */
class CompatibilityRefusalTest {
    private static final VmConfig CONFIG = new VmConfig("foreign", 8L << 20, 1, InitialMemory.RANDOM, WorkloadConfig.IDLE,
            P2pPolicy.AUTO, List.of(DeviceConfig.of("nic0", DeviceKind.NIC), DeviceConfig.of("crypto0", DeviceKind.CRYPTO)));

    private RawSource peer;
    private TestDaemons daemons;

    @BeforeEach
    void start() throws Exception {
        peer = new RawSource();
        daemons = peer.daemons;
    }

    @AfterEach
    void stop() {
        peer.close();
    }

    static Stream<Arguments> refusals() {
        Consumer<ObjectNode> newerFormat = crypto -> crypto.put("formatVersion", 99);
        Consumer<ObjectNode> ndmaOnCrypto = crypto -> crypto.put("ndma", true);
        Consumer<ObjectNode> oddMemory = crypto -> crypto.put("memoryBytes", 4096 + 100);
        Consumer<ObjectNode> reinitOnCrypto = crypto -> crypto.put("reinitMs", 100);
        return Stream.of(true, false).flatMap(dryRun -> Stream.of(
                Arguments.of("formatVersion", newerFormat, dryRun),
                Arguments.of("ndma", ndmaOnCrypto, dryRun),
                Arguments.of("memoryBytes", oddMemory, dryRun),
                Arguments.of("reinitMs", reinitOnCrypto, dryRun)));
    }

    @ParameterizedTest(name = "{0}, dry run {2}")
    @MethodSource("refusals")
    void aDeviceThisDaemonCannotReadOrHostIsRefusedBeforeAnythingIsAllocated(String field, Consumer<ObjectNode> change,
                                                                          boolean dryRun) throws Exception {
        try (Vm vm = Vm.boot(CONFIG)) {
            ObjectNode description = (ObjectNode) Json.mapper().readTree(RawSource.description(vm, "mig-foreign", dryRun, PageCodec.NONE));
            change.accept((ObjectNode) description.path("devices").path(1));
            BlockingQueue<Frame> replies = new LinkedBlockingQueue<>();
            FrameChannel control = peer.connect(SessionId.random(), ChannelRole.CONTROL, 0, replies);
            control.send(new Frame.VmDescription(vm.memory().sizeBytes(), 4096, 1, Json.mapper().writeValueAsBytes(description)));

            Frame answer = replies.poll(30, TimeUnit.SECONDS);
            assertThat(answer).isInstanceOf(Frame.VmRefused.class);
            Frame.VmRefused refused = (Frame.VmRefused) answer;
            assertThat(refused.code()).isEqualTo(ErrorCode.INCOMPATIBLE_DEVICE);
            assertThat(refused.device()).isEqualTo("crypto0");
            assertThat(refused.field()).isEqualTo(field);
            assertThat(refused.reason()).isNotBlank();

            JsonNode incoming = destinationSide();
            assertThat(incoming.path("error").path("code").asText()).isEqualTo("incompatible_device");
            assertThat(incoming.path("error").path("details").path("device").asText()).isEqualTo("crypto0");
            assertThat(incoming.path("error").path("details").path("field").asText()).isEqualTo(field);
            assertThat(daemons.destinationApi.get("/v1/vms").path("vms")).isEmpty();
            assertThat(daemons.destination.get(VmManager.class).committedBytes()).as("nothing allocated").isZero();
        }
    }

    @Test
    void f8PagesInACodecThisDaemonCannotRunAreRefusedBeforeAnythingIsAllocated() throws Exception {
        try (Vm vm = Vm.boot(CONFIG)) {
            ObjectNode description = (ObjectNode) Json.mapper().readTree(RawSource.description(vm, "mig-packed", false, PageCodec.ZSTD));
            assertThat(description.path("compression").asText()).isEqualTo("zstd");
            description.put("compression", "brotli");
            BlockingQueue<Frame> replies = new LinkedBlockingQueue<>();
            FrameChannel control = peer.connect(SessionId.random(), ChannelRole.CONTROL, 0, replies);
            control.send(new Frame.VmDescription(vm.memory().sizeBytes(), 4096, 1, Json.mapper().writeValueAsBytes(description)));

            Frame answer = replies.poll(30, TimeUnit.SECONDS);
            assertThat(answer).isInstanceOf(Frame.Abort.class);
            assertThat(((Frame.Abort) answer).code()).isEqualTo(ErrorCode.INCOMPATIBLE);
            assertThat(((Frame.Abort) answer).message()).contains("page data comes compressed", "brotli");
            assertThat(destinationSide().path("error").path("code").asText()).isEqualTo("incompatible");
            assertThat(daemons.destinationApi.get("/v1/vms").path("vms")).isEmpty();
            assertThat(daemons.destination.get(VmManager.class).committedBytes()).as("nothing allocated").isZero();
        }
    }

    @Test
    void anUncompressedDescriptionSaysNothingOfCompression() throws Exception {
        try (Vm vm = Vm.boot(CONFIG)) {
            JsonNode description = Json.mapper().readTree(RawSource.description(vm, "mig-plain", false, PageCodec.NONE));
            assertThat(description.has("compression")).as("a destination of an earlier build still reads it").isFalse();
        }
    }

    private JsonNode destinationSide() {
        return peer.destinationSide(true);
    }
}
