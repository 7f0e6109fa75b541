package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.memory.GuestMemory;
import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PageRouting;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.LoopbackChannels;
import dev.ferry.protocol.transfer.PageReceiver;
import dev.ferry.protocol.transfer.PageSender;
import dev.ferry.protocol.transfer.PageSet;
import dev.ferry.protocol.transfer.PageSource;
import dev.ferry.protocol.transfer.RateLimiter;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * One pass over memory with the devices' data beside it, over channels connected over loopback TCP: all of it
 * arrives; and when a channel fails or the flow is stopped, every worker of the pass has ended by the
 * time the pass throws, so nothing of a failed pass reads memory that is about to be rolled back.
 */
class PassTest {
    private static final int CHANNELS = 2;

    private LoopbackChannels local;
    private Vm vm;
    private GuestMemory arrived;
    private final ThreadPoolExecutor workers = new ThreadPoolExecutor(0, 16, 1, TimeUnit.SECONDS, new java.util.concurrent.SynchronousQueue<>());
    private final List<FrameChannel> data = new ArrayList<>();
    private final List<FrameChannel> destinations = new ArrayList<>();
    private final AtomicLong deviceBytes = new AtomicLong();
    private FrameChannel control;

    @BeforeEach
    void open() throws Exception {
        local = new LoopbackChannels();
        vm = Vm.boot(new VmConfig("pass", 64L << 20, 1, InitialMemory.RANDOM, WorkloadConfig.IDLE, P2pPolicy.AUTO,
                List.of(DeviceConfig.of("gpu0", DeviceKind.GPU).withMemoryBytes(1L << 20), DeviceConfig.of("serial0", DeviceKind.SERIAL))));
        vm.pause();
        arrived = new GuestMemory(vm.memory().sizeBytes());
        LoopbackChannels.Pair controlPair = local.open(ChannelRole.CONTROL, 0, null, null);
        control = controlPair.source();
        control.send(new Frame.VmDescription(vm.memory().sizeBytes(), PageGeometry.PAGE_SIZE, CHANNELS, new byte[] {'{', '}'}));
        for (int c = 0; c < CHANNELS; c++) {
            PageReceiver receiver = new PageReceiver((page, bytes) -> {
                if (bytes == null) {
                    arrived.loadZeroPage(page);
                } else {
                    arrived.loadPage(page, bytes);
                }
            });
            // Device data travels beside the pages (F10).
            LoopbackChannels.Pair pair = local.open(ChannelRole.DATA, c, null, (channel, frame) -> {
                if (frame instanceof Frame.DeviceData chunk) {
                    deviceBytes.addAndGet(chunk.content().readableBytes());
                    chunk.release();
                } else {
                    receiver.frameReceived(channel, frame);
                }
            });
            pair.destination().setPageRouting(new PageRouting(vm.memory().pages(), CHANNELS, c));
            data.add(pair.source());
            destinations.add(pair.destination());
        }
    }

    @AfterEach
    void close() {
        local.close();
        vm.close();
        arrived.release();
        workers.shutdownNow();
    }

    private Pass pass() {
        GuestMemory memory = vm.memory();
        PageSource source = new PageSource() {
            @Override
            public ByteBuffer page(long index) {
                return memory.pageView(index);
            }

            @Override
            public ByteBuffer run(long first, int count) {
                return memory.pagesView(first, count);
            }
        };
        RateLimiter limiter = RateLimiter.unlimited();
        return new Pass(new PageSender(data, workers, limiter), source, new DeviceStreams(vm.devices(), control, data, limiter), workers);
    }

    @Test
    void f10APreCopyPassSendsTheDevicesReadyDataFirstThenTakesItsPages() throws Exception {
        vm.devices().forEach(d -> assertThat(d.setState(DeviceState.PRE_COPY).succeeded()).isTrue());
        long initial = vm.devices().stream().mapToLong(d -> d.initialBytes()).sum();
        assertThat(initial).as("the gpu's initial data").isPositive();
        long[] initialWhenTaken = {-1};
        Pass.Result result = pass().run(0, () -> {
            // The pages are taken (in SaveFlow: the dirty logs read) once the devices' data is out.
            initialWhenTaken[0] = vm.devices().stream().mapToLong(d -> d.initialBytes()).sum();
            return PageSet.all(vm.memory().pages());
        }, Pass.DeviceData.READY);
        assertThat(initialWhenTaken[0]).isZero();
        assertThat(result.pages()).isEqualTo(vm.memory().pages());
        assertThat(result.deviceBytes()).isGreaterThanOrEqualTo(initial);
        await().atMost(Duration.ofSeconds(10)).until(() -> deviceBytes.get() == result.deviceBytes());
        await().atMost(Duration.ofSeconds(10)).until(() -> samePages(vm.memory(), arrived));
    }

    @Test
    void f10AStopAndCopyPassTakesItsPagesAtOnceAndSendsTheDevicesDataBesideThem() throws Exception {
        vm.devices().forEach(d -> assertThat(d.setState(DeviceState.PRE_COPY).succeeded()).isTrue());
        vm.devices().forEach(d -> assertThat(d.setState(DeviceState.STOP_COPY).succeeded()).isTrue());
        long[] pendingWhenTaken = {-1};
        Pass.Result result = pass().run(0, () -> {
            pendingWhenTaken[0] = vm.devices().stream().mapToLong(d -> d.stopCopyBytes()).sum();
            return PageSet.all(vm.memory().pages());
        }, Pass.DeviceData.TO_END);
        assertThat(pendingWhenTaken[0]).as("nothing of the devices' data was waited for").isPositive();
        assertThat(result.pages()).isEqualTo(vm.memory().pages());
        await().atMost(Duration.ofSeconds(10)).until(() -> deviceBytes.get() == result.deviceBytes());
        await().atMost(Duration.ofSeconds(10)).until(() -> samePages(vm.memory(), arrived));
    }

    @Test
    void aStoppedPassHasNoWorkerLeftWhenItThrows() throws Exception {
        // A peer that stopped reading: the sender of channel 1 blocks on its writes.
        destinations.get(1).pauseReading();
        Thread[] flow = new Thread[1];
        CompletableFuture<Throwable> ended = CompletableFuture.supplyAsync(() -> {
            flow[0] = Thread.currentThread();
            try {
                pass().run(0, () -> PageSet.all(vm.memory().pages()), Pass.DeviceData.NONE);
                return null;
            } catch (Exception e) {
                return e;
            }
        });
        await().atMost(Duration.ofSeconds(10)).until(() -> !data.get(1).isWritable() && workers.getActiveCount() > 0);
        flow[0].interrupt();
        assertThat(ended.get(5, TimeUnit.SECONDS)).isInstanceOf(InterruptedException.class);
        // The senders' work has returned (TaskGroupTest); their pool threads go idle right after.
        await().atMost(Duration.ofSeconds(1)).until(() -> workers.getActiveCount() == 0);
    }

    @Test
    void aChannelThatFailsStopsThePassAndItsOtherSenders() throws Exception {
        destinations.forEach(FrameChannel::pauseReading);
        CompletableFuture<Throwable> ended = CompletableFuture.supplyAsync(() -> {
            try {
                pass().run(0, () -> PageSet.all(vm.memory().pages()), Pass.DeviceData.NONE);
                return null;
            } catch (Exception e) {
                return e;
            }
        });
        await().atMost(Duration.ofSeconds(10)).until(() -> !data.get(0).isWritable() && !data.get(1).isWritable());
        destinations.get(1).closeNow();
        assertThatThrownBy(() -> {
            throw ended.get(5, TimeUnit.SECONDS);
        }).as("the pass ends with channel 1's failure, channel 0 still blocked").isInstanceOf(ProtocolException.class);
        await("channel 0's sender was interrupted and has ended").atMost(Duration.ofSeconds(1))
                .until(() -> workers.getActiveCount() == 0);
    }

    private static boolean samePages(GuestMemory a, GuestMemory b) {
        ByteBuffer x = ByteBuffer.allocate(PageGeometry.PAGE_SIZE);
        ByteBuffer y = ByteBuffer.allocate(PageGeometry.PAGE_SIZE);
        for (long page = 0; page < a.pages(); page++) {
            a.readPage(page, x.clear());
            b.readPage(page, y.clear());
            if (!x.flip().equals(y.flip())) {
                return false;
            }
        }
        return true;
    }
}
