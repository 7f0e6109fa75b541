package dev.ferry.device.conformance;

import dev.ferry.device.Device;
import dev.ferry.device.MmioSource;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.MigrationState;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.migration.WindowWrite;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A device under test with every write to it recorded, so that a counter-example can say exactly what was
 * done: state writes with their outcome, window reads and writes with their sizes, resets, MMIO. A check
 * calls {@link #begin} before each case, so the record is that case's writes only.
 */
final class Probe {
    private final Vm vm;
    private final Device device;
    private final List<String> writes = new ArrayList<>();

    /** The VM's first device. */
    Probe(Vm vm) {
        this.vm = vm;
        this.device = vm.devices().get(0);
    }

    Device device() {
        return device;
    }

    /**
     * A new case: forgets the writes so far, resets the device (D5) and probes it as the guest driver does at boot
     * (its ring area into registers 1 and 2), so that its doorbells do real work again.
     */
    void begin() {
        writes.clear();
        reset();
        device.mmioWrite(Device.REG_RING_BASE, VmConfig.ringBase(vm.memory().sizeBytes(), device.slot()), MmioSource.CPU);
        device.mmioWrite(Device.REG_RING_SIZE, VmConfig.RING_AREA_BYTES, MmioSource.CPU);
        vm.awaitQuiescent();
        writes.add("mmio ring base and size");
    }

    void reset() {
        device.reset();
        writes.add("reset");
    }

    TransitionResult set(DeviceState state) {
        TransitionResult result = device.setState(state);
        writes.add("state " + state + " (" + state.bits() + ") -> " + outcome(result));
        return result;
    }

    TransitionResult set(int bits) {
        return set(DeviceState.of(bits));
    }

    /** Writes the state and treats anything but success as a broken precondition of the case. */
    void require(DeviceState state) {
        TransitionResult result = set(state);
        if (!result.succeeded()) {
            throw violation("the write to " + state + " failed: " + result.describe());
        }
    }

    Device.V2Result v2(MigrationState target) {
        Device.V2Result result = device.setMigrationState(target);
        writes.add("v2 " + target + " -> " + (result.succeeded() ? "ok" : "failed") + " via " + result.path()
                + ", now " + device.state());
        return result;
    }

    int read(int max) {
        int n = device.readWindow(ByteBuffer.allocate(max));
        writes.add("read " + max + " -> " + n);
        return n;
    }

    /** Reads up to {@code max} bytes and returns them. */
    byte[] readBytes(int max) {
        ByteBuffer buffer = ByteBuffer.allocate(max);
        int n = device.readWindow(buffer);
        writes.add("read " + max + " -> " + n);
        byte[] out = new byte[n];
        buffer.flip().get(out);
        return out;
    }

    /** Reads until nothing is pending, in chunks of {@code chunk}: one record for all of it. */
    byte[] drain(int chunk) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer buffer = ByteBuffer.allocate(chunk);
        int reads = 0;
        while (true) {
            buffer.clear();
            int n = device.readWindow(buffer);
            reads++;
            if (n == 0) {
                break;
            }
            out.write(buffer.array(), 0, n);
            if (reads > 10_000_000) {
                throw violation("the window never ran dry: " + out.size() + " bytes and counting");
            }
        }
        writes.add("read to the end in chunks of " + chunk + " -> " + out.size() + " bytes");
        return out.toByteArray();
    }

    WindowWrite write(byte[] data, int off, int length) {
        WindowWrite result = device.writeWindow(ByteBuffer.wrap(data, off, length));
        writes.add("write " + length + " bytes at " + off + " -> " + (result.accepted() ? "accepted" : "failed")
                + ", loaded " + result.loadedBytes());
        return result;
    }

    /** Writes the whole stream in chunks of {@code chunk}; stops at the first failed write and returns it. */
    WindowWrite writeAll(byte[] stream, int chunk) {
        WindowWrite last = new WindowWrite.Accepted(device.loadedBytes());
        int writesDone = 0;
        for (int off = 0; off < stream.length; off += chunk) {
            ByteBuffer piece = ByteBuffer.wrap(stream, off, Math.min(chunk, stream.length - off));
            while (piece.hasRemaining()) {
                last = device.writeWindow(piece);
                writesDone++;
                if (!last.accepted()) {
                    writes.add("write " + stream.length + " bytes of data in chunks of " + chunk + " -> failed at write "
                            + writesDone + ", loaded " + last.loadedBytes());
                    return last;
                }
            }
        }
        writes.add("write " + stream.length + " bytes of data in chunks of " + chunk + " -> accepted, loaded "
                + last.loadedBytes());
        return last;
    }

    /** Rings the kind's own doorbell {@code count} times (seeded). */
    void ring(int count, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i < count; i++) {
            device.mmioWrite(Device.REG_DOORBELL, device.workloadDoorbell(random), MmioSource.CPU);
        }
        writes.add("mmio doorbell x" + count + " (seed " + seed + ")");
    }

    /** The device's own work: {@code count} writes of its memory (seeded). */
    void ownWork(int count, long seed) {
        int done = device.ownWork(count, new SplittableRandom(seed));
        writes.add("own work x" + count + " -> " + done);
    }

    void note(String what) {
        writes.add(what);
    }

    Violation violation(String problem) {
        return new Violation(problem, String.join("; ", writes));
    }

    private static String outcome(TransitionResult result) {
        if (result instanceof TransitionResult.Rejected r) {
            return "refused (" + r.failure() + ")";
        }
        if (result instanceof TransitionResult.Failed f) {
            return "failed into ERROR (" + f.failure() + ")";
        }
        return "ok";
    }
}
