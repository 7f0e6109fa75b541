package dev.ferry.device;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.migration.WindowWrite;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.List;

/** Small VMs and helpers for device-model tests. */
public final class TestVms {
    public static final long MEMORY = 4L << 20;

    private TestVms() {
    }

    public static VmConfig config(String id, P2pPolicy p2p, DeviceConfig... devices) {
        return new VmConfig(id, MEMORY, 1, InitialMemory.ZERO, WorkloadConfig.IDLE, p2p, List.of(devices));
    }

    public static Vm boot(DeviceConfig... devices) {
        return Vm.boot(config("vm", P2pPolicy.AUTO, devices));
    }

    /** Every built-in kind, for parameterized tests. */
    public static java.util.stream.Stream<DeviceKind> kinds() {
        return DeviceKind.builtIn().stream();
    }

    /** A device config with small internal memory so that whole streams stay small. */
    public static DeviceConfig small(String id, DeviceKind kind) {
        return DeviceConfig.of(id, kind).withMemoryBytes(16 * 1024);
    }

    public static void require(TransitionResult result) {
        if (!result.succeeded()) {
            throw new AssertionError("transition failed: " + result.describe());
        }
    }

    /** Reads the window until it reports nothing pending, in chunks of {@code chunk} bytes. */
    public static byte[] drain(Device device, int chunk) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer buffer = ByteBuffer.allocate(chunk);
        while (true) {
            buffer.clear();
            int n = device.readWindow(buffer);
            if (n == 0) {
                return out.toByteArray();
            }
            out.write(buffer.array(), 0, n);
        }
    }

    /** A whole stop-and-copy stream of the device, which ends frozen in stop-and-copy. */
    public static byte[] saveWhole(Device device) {
        require(device.setState(DeviceState.STOP_COPY));
        return drain(device, 64 * 1024);
    }

    /**
     * Loads {@code stream} into {@code device} in chunks of {@code chunk} bytes and leaves RESUMING for
     * {@code to}; a write the device fails (W7) ends the load there, with that failure.
     */
    public static TransitionResult load(Device device, byte[] stream, int chunk, DeviceState to) {
        require(device.setState(DeviceState.RESUMING));
        for (int off = 0; off < stream.length; off += chunk) {
            WindowWrite written = device.writeWindow(ByteBuffer.wrap(stream, off, Math.min(chunk, stream.length - off)));
            if (written instanceof WindowWrite.Failed failed) {
                return failed.failure();
            }
        }
        return device.setState(to);
    }

    /** Rings the device's main doorbell {@code count} times and waits until the VM is idle. */
    public static void work(Vm vm, Device device, int count, long seed) {
        java.util.SplittableRandom random = new java.util.SplittableRandom(seed);
        for (int i = 0; i < count; i++) {
            device.mmioWrite(Device.REG_DOORBELL, device.workloadDoorbell(random), MmioSource.CPU);
        }
        if (!vm.awaitQuiescent()) {
            throw new AssertionError("VM did not go idle");
        }
    }
}
