package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.vm.Vm;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/**
 * D8's messages for a stream of another kind or configuration, and a default-sized GPU's 64 MiB moving in
 * pre-copy. Round trips in any chunking, with damaged, truncated and wrong-kind data, for every kind, are the
 * conformance kit's W2, W5 and D8 ({@code ConformanceTest}).
 */
class SaveResumeTest {

    private static final long SEED = 20261124L;

    @Test
    void d8IncompatibleKindOrConfigurationFailsTheLoad() {
        try (Vm source = TestVms.boot(TestVms.small("dev0", DeviceKind.GPU));
             Vm nic = TestVms.boot(TestVms.small("dev0", DeviceKind.NIC));
             Vm bigger = TestVms.boot(TestVms.small("dev0", DeviceKind.GPU).withMemoryBytes(32 * 1024))) {
            byte[] stream = TestVms.saveWhole(source.devices().get(0));
            TransitionResult wrongKind = TestVms.load(nic.devices().get(0), stream, 4096, DeviceState.RUNNING);
            assertThat(wrongKind).isInstanceOf(TransitionResult.Failed.class);
            assertThat(((TransitionResult.Failed) wrongKind).message()).contains("gpu device").contains("nic");
            TransitionResult wrongConfig = TestVms.load(bigger.devices().get(0), stream, 4096, DeviceState.RUNNING);
            assertThat(((TransitionResult.Failed) wrongConfig).message()).contains("incompatible configuration");
        }
    }

    @Test
    void defaultSizedGpuMovesItsSixtyFourMegabytesInPreCopy() {
        DeviceConfig config = DeviceConfig.of("gpu0", DeviceKind.GPU);
        assertThat(config.memoryBytes()).isEqualTo(64L << 20);
        try (Vm source = TestVms.boot(config); Vm target = TestVms.boot(config)) {
            Device gpu = source.devices().get(0);
            TestVms.work(source, gpu, 200, SEED);
            require(gpu.setState(DeviceState.PRE_COPY));
            byte[] preCopy = TestVms.drain(gpu, 1 << 20);
            TestVms.work(source, gpu, 10, SEED + 1);
            require(gpu.setState(DeviceState.STOP_COPY));
            byte[] stopCopy = TestVms.drain(gpu, 1 << 20);
            assertThat(stopCopy.length).as("stop-and-copy sends only what changed").isLessThan(preCopy.length / 10);
            Device twin = target.devices().get(0);
            require(twin.setState(DeviceState.RESUMING));
            twin.writeWindow(ByteBuffer.wrap(preCopy));
            twin.writeWindow(ByteBuffer.wrap(stopCopy));
            require(twin.setState(DeviceState.STOP));
            assertThat(twin.digest()).isEqualTo(gpu.digest());
        }
    }
}
