package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.device.Device;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import dev.ferry.orchestrator.TestDaemons;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PagesBuilder;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.compression.PageCodec;
import dev.ferry.protocol.net.FrameChannel;
import io.netty.buffer.Unpooled;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A source that holds the token but does not follow the migration: it skips pages, skips steps, or
 * follows every step. The destination builds a VM only from a complete stream (F11), so no VM ever
 * holds memory it did not receive, and memory the daemon reuses from an earlier VM is never seen.
 */
class HostileSourceTest {
    private static final VmConfig CONFIG = new VmConfig("hostile", 8L << 20, 1, InitialMemory.RANDOM, WorkloadConfig.IDLE,
            P2pPolicy.AUTO, List.of(DeviceConfig.of("serial0", DeviceKind.SERIAL)));
    private static final long PAGES = (8L << 20) / 4096;

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

    /** A session's channels, driven by hand. */
    private final class Session {
        final SessionId session = SessionId.random();
        final BlockingQueue<Frame> replies = new LinkedBlockingQueue<>();
        final FrameChannel control;
        FrameChannel data;

        Session(Vm vm) throws Exception {
            control = peer.connect(session, ChannelRole.CONTROL, 0, replies);
            byte[] description = RawSource.description(vm, "mig-hostile", false, PageCodec.NONE);
            control.send(new Frame.VmDescription(vm.memory().sizeBytes(), 4096, 1, description));
            assertThat(reply()).isInstanceOf(Frame.VmAccepted.class);
        }

        void openData() throws Exception {
            data = peer.connect(session, ChannelRole.DATA, 0, replies);
        }

        Frame reply() throws InterruptedException {
            return replies.poll(30, TimeUnit.SECONDS);
        }

        /** Every device's whole stream (stop-and-copy) on the data channel, then DEVICE_END on the control channel. */
        void sendDevices(Vm vm) {
            List<Device> devices = vm.devices();
            for (int index = 0; index < devices.size(); index++) {
                Device device = devices.get(index);
                assertThat(device.setState(DeviceState.STOP_COPY).succeeded()).isTrue();
                long offset = 0;
                ByteBuffer chunk = ByteBuffer.allocate(64 << 10);
                for (int n = device.readWindow(chunk.clear()); n > 0; n = device.readWindow(chunk.clear())) {
                    data.send(new Frame.DeviceData(index, offset, Unpooled.copiedBuffer(chunk.flip())));
                    offset += n;
                }
                control.send(new Frame.DeviceEnd(index, offset));
            }
        }
    }

    private JsonNode destinationSide() {
        return destinationSide(true);
    }

    /** The destination's view of the migration; with {@code ended}, once it has ended. */
    private JsonNode destinationSide(boolean ended) {
        return peer.destinationSide(ended);
    }

    @Test
    void aFirstPassThatLeavesPagesOutIsRefusedAndTheCopyDiscarded() throws Exception {
        try (Vm vm = Vm.boot(CONFIG)) {
            Session source = new Session(vm);
            source.openData();
            // Iteration 0 with the first 10 pages of 2048.
            PagesBuilder builder = new PagesBuilder(source.data.channel().alloc(), 0);
            ByteBuffer page = ByteBuffer.allocate(4096);
            for (int i = 0; i < 10; i++) {
                vm.memory().readPage(i, page.clear());
                builder.addCopy(i, page.flip());
            }
            source.data.send(builder.build());
            source.data.send(new Frame.DataEnd(0, 10));
            source.control.send(new Frame.IterationEnd(0, 10, 10 * 4096));

            Frame answer = source.reply();
            assertThat(answer).isInstanceOf(Frame.Abort.class);
            assertThat(((Frame.Abort) answer).code()).isEqualTo(ErrorCode.OUT_OF_ORDER);
            assertThat(((Frame.Abort) answer).message()).contains("the first pass carried 10 pages of 2048");
            assertThat(destinationSide().path("error").path("code").asText()).isEqualTo("protocol_error");
            assertThat(daemons.destinationApi.get("/v1/vms").path("vms")).as("the copy is discarded").isEmpty();
        }
    }

    /**
     * F11: the memory disclosure. A source sends the description, PREPARE and COMMIT and no pages, to a
     * destination that just freed a VM's memory: refused at PREPARE, no VM built.
     */
    @Test
    void prepareBeforeEveryPageArrivedIsRefusedAndNoVmIsBuilt() throws Exception {
        deleteAVmOfRandomMemoryOnTheDestination();
        try (Vm vm = Vm.boot(CONFIG)) {
            Session source = new Session(vm);
            source.openData();
            source.sendDevices(vm);
            source.data.send(new Frame.ChannelEnd(0));
            source.control.send(new Frame.Prepare(false));
            Frame answer = source.reply();
            assertThat(answer).isInstanceOf(Frame.Abort.class);
            assertThat(((Frame.Abort) answer).message()).contains(PAGES + " of " + PAGES + " pages never arrived")
                    .contains("F11");
            assertThat(destinationSide().path("error").path("code").asText()).isEqualTo("protocol_error");
            assertThat(daemons.destinationApi.get("/v1/vms").path("vms")).isEmpty();
        }
    }

    /** The attack as it was seen: PREPARE and COMMIT at once, no pages. COMMIT before PREPARED is out of order. */
    @Test
    void aCommitRightBehindPrepareWithoutPagesIsRefusedAndNoVmIsBuilt() throws Exception {
        deleteAVmOfRandomMemoryOnTheDestination();
        try (Vm vm = Vm.boot(CONFIG)) {
            Session source = new Session(vm);
            source.openData();
            source.sendDevices(vm);
            source.control.send(new Frame.Prepare(false));
            source.control.send(new Frame.Commit());
            Frame answer = source.reply();
            assertThat(answer).isInstanceOf(Frame.Abort.class);
            assertThat(destinationSide().path("phase").asText()).isEqualTo("failed");
            assertThat(daemons.destinationApi.get("/v1/vms").path("vms")).isEmpty();
        }
    }

    @Test
    void prepareWithoutTheDataChannelsIsRefused() throws Exception {
        try (Vm vm = Vm.boot(CONFIG)) {
            Session source = new Session(vm);
            source.control.send(new Frame.Prepare(false));
            Frame answer = source.reply();
            assertThat(answer).isInstanceOf(Frame.Abort.class);
            assertThat(((Frame.Abort) answer).message()).contains("0 of 1 data channels arrived before PREPARE");
            assertThat(destinationSide().path("phase").asText()).isEqualTo("failed");
            assertThat(daemons.destinationApi.get("/v1/vms").path("vms")).isEmpty();
        }
    }

    /**
     * F11: memory a daemon reuses from an earlier VM, taken without zeroing because a first pass
     * overwrites all of it, holds none of that VM's bytes once the new VM is built: a source whose VM is
     * all zeros, following every step, yields a VM whose memory digest is that of zero memory.
     */
    @Test
    void memoryReusedFromAnEarlierVmIsNeverSeenByTheNextOne() throws Exception {
        deleteAVmOfRandomMemoryOnTheDestination();
        assertThat(poolBytes()).as("the destination keeps the freed memory for reuse").isGreaterThanOrEqualTo(8L << 20);
        try (Vm vm = Vm.boot(CONFIG)) {
            Session source = new Session(vm);
            source.openData();
            for (long first = 0; first < PAGES; first += Frame.Pages.MAX_PAGES) {
                PagesBuilder builder = new PagesBuilder(source.data.channel().alloc(), 0);
                for (long page = first; page < first + Frame.Pages.MAX_PAGES; page++) {
                    builder.addZero(page);
                }
                source.data.send(builder.build());
            }
            source.data.send(new Frame.DataEnd(0, PAGES));
            source.control.send(new Frame.IterationEnd(0, PAGES, PAGES * 8));
            assertThat(source.reply()).isInstanceOf(Frame.IterationDone.class);
            source.sendDevices(vm);
            source.data.send(new Frame.ChannelEnd(PAGES));
            source.control.send(new Frame.Prepare(false));
            assertThat(source.reply()).isInstanceOf(Frame.Prepared.class);
            source.control.send(new Frame.Commit());
            assertThat(source.reply()).isInstanceOf(Frame.Confirm.class);

            JsonNode digest = daemons.destinationApi.get("/v1/vms/hostile/digest");
            String zero;
            try (Vm empty = Vm.boot(new VmConfig("zero", 8L << 20, 1, InitialMemory.ZERO, WorkloadConfig.IDLE, P2pPolicy.AUTO,
                    List.of(DeviceConfig.of("serial0", DeviceKind.SERIAL))))) {
                empty.pause();
                zero = empty.digest().memory();
            }
            assertThat(digest.path("memory").asText()).as("nothing of the earlier VM's memory").isEqualTo(zero);
        }
    }

    /**
     * Sends the source VM's pages of iteration {@code iteration}, {@code pages} of them from page 0, as
     * views of its memory; each page in {@code tear} is changed after its frame took its checksum and
     * before it is written, as a running guest's write may do. Waits for ITERATION_DONE.
     */
    private void sendTearing(Session source, Vm vm, int iteration, long pages, java.util.Set<Long> tear) throws Exception {
        ByteBuffer memory = ByteBuffer.allocateDirect((int) (pages * 4096));
        for (long page = 0; page < pages; page++) {
            vm.memory().readPage(page, memory.slice((int) page * 4096, 4096));
        }
        for (long first = 0; first < pages; first += Frame.Pages.MAX_PAGES) {
            PagesBuilder builder = new PagesBuilder(source.data.channel().alloc(), iteration);
            for (long page = first; page < Math.min(pages, first + Frame.Pages.MAX_PAGES); page++) {
                builder.addPage(page, memory.slice((int) page * 4096, 4096));
            }
            Frame.Pages frame = builder.build();
            for (long page : tear) {
                if (page >= first && page < first + Frame.Pages.MAX_PAGES) {
                    memory.put((int) page * 4096 + 100, (byte) (memory.get((int) page * 4096 + 100) ^ 0x20));
                }
            }
            source.data.send(frame).sync();
        }
        source.data.send(new Frame.DataEnd(iteration, pages));
        source.control.send(new Frame.IterationEnd(iteration, pages, pages * 4104));
        assertThat(source.reply()).isInstanceOf(Frame.IterationDone.class);
    }

    /**
     * A page changed while it was sent arrives torn; the next pass sends it again, as the source's dirty
     * log makes it, and the VM is built with the page as it is now: neither a false failure nor a torn
     * page in the VM.
     */
    @Test
    void aPageTornInOnePassAndSentAgainInTheNextMigrates() throws Exception {
        try (Vm vm = Vm.boot(CONFIG)) {
            Session source = new Session(vm);
            source.openData();
            sendTearing(source, vm, 0, PAGES, java.util.Set.of(5L, 700L));
            JsonNode during = destinationSide(false);
            assertThat(during.path("memoryBytes").path("tornPages").asLong()).isEqualTo(2);
            // Pass 1: the torn pages again, intact.
            PagesBuilder again = new PagesBuilder(source.data.channel().alloc(), 1);
            ByteBuffer page = ByteBuffer.allocateDirect(4096);
            for (long index : new long[] {5, 700}) {
                vm.memory().readPage(index, page.clear());
                again.addCopy(index, page.flip());
            }
            source.data.send(again.build());
            source.data.send(new Frame.DataEnd(1, 2));
            source.control.send(new Frame.IterationEnd(1, 2, 2 * 4104));
            assertThat(source.reply()).isInstanceOf(Frame.IterationDone.class);
            source.sendDevices(vm);
            source.data.send(new Frame.ChannelEnd(PAGES + 2));
            source.control.send(new Frame.Prepare(false));
            assertThat(source.reply()).isInstanceOf(Frame.Prepared.class);
            source.control.send(new Frame.Commit());
            assertThat(source.reply()).isInstanceOf(Frame.Confirm.class);
            vm.pause();
            assertThat(daemons.destinationApi.get("/v1/vms/hostile/digest").path("memory").asText())
                    .isEqualTo(vm.digest().memory());
        }
    }

    /** A page torn and never sent again is a change no dirty log explains, or damage: PREPARE is refused (F11). */
    @Test
    void aPageTornAndNeverSentAgainIsRefusedAtPrepare() throws Exception {
        try (Vm vm = Vm.boot(CONFIG)) {
            Session source = new Session(vm);
            source.openData();
            sendTearing(source, vm, 0, PAGES, java.util.Set.of(42L));
            source.sendDevices(vm);
            source.data.send(new Frame.ChannelEnd(PAGES));
            source.control.send(new Frame.Prepare(false));
            Frame answer = source.reply();
            assertThat(answer).isInstanceOf(Frame.Abort.class);
            assertThat(((Frame.Abort) answer).message()).contains("did not match their checksums and that no later pass sent"
                    + " again: 1 (the first is page 42)").contains("F11");
            assertThat(destinationSide().path("error").path("code").asText()).isEqualTo("protocol_error");
            assertThat(daemons.destinationApi.get("/v1/vms").path("vms")).isEmpty();
        }
    }

    private void deleteAVmOfRandomMemoryOnTheDestination() throws Exception {
        daemons.destinationApi.post("/v1/vms", Map.of("id", "earlier", "memoryBytes", 8L << 20, "initialMemory", "random"));
        daemons.destinationApi.delete("/v1/vms/earlier");
    }

    private long poolBytes() throws Exception {
        java.net.http.HttpResponse<String> metrics = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest
                .newBuilder(java.net.URI.create("http://" + daemons.destination.http() + "/metrics")).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
        return metrics.body().lines().filter(l -> l.startsWith("ferry_memory_pool_bytes ")).findFirst()
                .map(l -> (long) Double.parseDouble(l.substring(l.indexOf(' ') + 1))).orElse(0L);
    }
}
