package dev.ferry.device.vm;

import dev.ferry.device.Device;
import dev.ferry.device.memory.DirtyBitmap;
import dev.ferry.device.memory.GuestMemory;
import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.GraceStates;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.migration.WindowWrite;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * The reference save and resume flows (SPEC §5) between two VMs in one process, without transport,
 * convergence policy or rollback: an executable reading of S1–S5 and R1–R4 over the device model,
 * used by the demo and the tests. The daemon's migration engine runs the same steps across a
 * network, with everything this leaves out.
 */
public final class InProcessMigration {
    private static final int WINDOW_CHUNK = 64 * 1024;

    /** What one migration moved. */
    public record Report(int iterations, long pagesSent, long zeroPages, long deviceBytes) {
    }

    private final Vm source;
    private final Vm target;
    private final ByteBuffer page = ByteBuffer.allocateDirect(PageGeometry.PAGE_SIZE);
    private final ByteBuffer chunk = ByteBuffer.allocate(WINDOW_CHUNK);
    private long pagesSent;
    private long zeroPages;
    private long deviceBytes;

    private InProcessMigration(Vm source, Vm target) {
        this.source = source;
        this.target = target;
    }

    /**
     * Runs S1–S5 on {@code source} and R1–R3 on {@code target}: on return the source is frozen in
     * stop-and-copy with its vCPUs parked, and the target holds the same state, loaded and waiting at
     * its grace barrier. {@link #start(Vm, boolean)} is R4.
     *
     * @param iterations how many pre-copy passes over the dirty logs to make in S2
     */
    public static Report migrate(Vm source, Vm target, int iterations) {
        return new InProcessMigration(source, target).run(iterations);
    }

    /** R4: every device RUNNING, then the vCPUs if the source's were running. */
    public static void start(Vm target, boolean vcpus) {
        for (Device device : target.devices()) {
            require(device, device.setState(DeviceState.RUNNING));
        }
        if (vcpus) {
            target.startVcpus();
        }
    }

    private Report run(int iterations) {
        GuestMemory memory = source.memory();
        // R1, R2: the target's fresh devices open their windows.
        for (Device device : target.devices()) {
            require(device, device.setState(DeviceState.RESUMING));
        }
        // S1: dirty tracking on, then all of memory.
        memory.vcpuLog().start();
        source.iommu().startDirtyTracking();
        for (long p = 0; p < memory.pages(); p++) {
            sendPage(p);
        }
        // S2: pre-copy: device data and dirty pages.
        for (Device device : source.devices()) {
            require(device, device.setState(DeviceState.PRE_COPY));
        }
        int done = 0;
        for (; done < iterations; done++) {
            sendDirtyPages();
            drainWindows(false);
        }
        // S3: vIOMMU grace, every device before any moves on (F1).
        for (Device device : source.devices()) {
            require(device, device.setState(GraceStates.saveGrace(device.config().ndma())));
        }
        // S4: P2P grace: the vCPUs stop.
        source.stopVcpus();
        // S5: stop-and-copy: freeze all, last dirty pages, the rest of every device's data.
        for (Device device : source.devices()) {
            require(device, device.setState(DeviceState.STOP_COPY));
        }
        sendDirtyPages();
        memory.vcpuLog().stop();
        source.iommu().stopDirtyTracking();
        drainWindows(true);
        // R3: load every device and wait at the barrier.
        for (Device device : target.devices()) {
            require(device, device.setState(GraceStates.resumeGrace(device.config().ndma())));
        }
        return new Report(done, pagesSent, zeroPages, deviceBytes);
    }

    private void sendDirtyPages() {
        GuestMemory memory = source.memory();
        DirtyBitmap.Snapshot dirty = memory.vcpuLog().readAndClear().union(memory.dmaLog().readAndClear());
        for (long p = dirty.next(0); p >= 0; p = dirty.next(p + 1)) {
            sendPage(p);
        }
    }

    private void sendPage(long p) {
        GuestMemory from = source.memory();
        GuestMemory to = target.memory();
        if (from.isZeroPage(p)) {
            to.loadZeroPage(p);
            zeroPages++;
        } else {
            page.clear();
            from.readPage(p, page);
            page.flip();
            to.loadPage(p, page);
        }
        pagesSent++;
    }

    private void drainWindows(boolean toEnd) {
        List<Device> targets = target.devices();
        for (Device device : source.devices()) {
            Device twin = targets.stream().filter(d -> d.id().equals(device.id())).findFirst()
                    .orElseThrow(() -> new IllegalStateException("target has no device " + device.id()));
            while (true) {
                chunk.clear();
                int n = device.readWindow(chunk);
                if (n == 0) {
                    if (toEnd && !device.streamFinished()) {
                        throw new IllegalStateException(device.id() + " reported no data before the end of its stream");
                    }
                    break;
                }
                chunk.flip();
                if (twin.writeWindow(chunk) instanceof WindowWrite.Failed failed) {
                    throw new IllegalStateException(twin.id() + ": " + failed.describe());
                }
                deviceBytes += n;
            }
        }
    }

    private static void require(Device device, TransitionResult result) {
        if (!result.succeeded()) {
            throw new IllegalStateException(device.id() + ": " + result.describe());
        }
    }
}
