package dev.ferry.orchestrator.migration;

import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.transfer.PageSender;
import dev.ferry.protocol.transfer.PageSet;
import dev.ferry.protocol.transfer.PageSource;
import dev.ferry.protocol.transfer.TaskGroup;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;

/**
 * One pass over memory on the source (S1, each S2 iteration, S5): the pass's pages and the devices'
 * data, both on the data channels (F10); then DATA_END on every channel, after both, and after S5's
 * pass CHANNEL_END too. If either fails,
 * or the flow is stopped, the other is interrupted and has ended before the pass throws, so nothing of
 * a failed pass still reads memory that is about to be rolled back.
 *
 * <p>In stop-and-copy nothing changes any more, so the devices' data goes beside the pages and neither
 * waits for the other. In a pre-copy iteration (S2) the devices' ready data goes first and the pages are
 * taken after it: they are what the dirty logs hold once it is out, so the pages a running guest dirtied
 * while device data moved go in this pass instead of being left for the next. What a pass leaves dirty
 * is then only what the guest wrote while its pages moved, and that is what the convergence estimate
 * (F3) and, at the last pass, the downtime are made of. A device's initial data is the bulk of what a
 * pre-copy iteration sends (tens of MiB for a GPU), so this is most of the difference.
 */
final class Pass {
    /**
     * What a pass sent: its pages (zero ones among them), their bytes on the wire, what those would have been
     * uncompressed (the same without compression), and device bytes.
     */
    record Result(long pages, long zeroPages, long pageWireBytes, long plainPageWireBytes, long deviceBytes) {
    }

    /** How the pass's device data is sent: nothing (the first pass), what is ready (then the pages), or to the end (beside them). */
    enum DeviceData { NONE, READY, TO_END }

    /** The pages of a pass, taken when the pass gets to them (for an S2 iteration, once the devices' data is out). */
    @FunctionalInterface
    interface Pages {
        PageSet take();
    }

    private final PageSender sender;
    private final PageSource source;
    private final DeviceStreams devices;
    private final Executor executor;

    Pass(PageSender sender, PageSource source, DeviceStreams devices, Executor executor) {
        this.sender = sender;
        this.source = source;
        this.devices = devices;
        this.executor = executor;
    }

    /** Runs pass {@code iteration}: its {@code pages} and its devices' data, in the order the class describes. */
    Result run(int iteration, Pages pages, DeviceData deviceData)
            throws ProtocolException, MigrationFailure, InterruptedException {
        PageSender.Result sent;
        long deviceBytes;
        try (TaskGroup workers = new TaskGroup(executor, "pass " + iteration)) {
            // Beside the devices' data, the pages are taken before any of it is sent; after it, once it is out.
            PageSet taken = deviceData == DeviceData.READY ? null : pages.take();
            List<TaskGroup.Task<Long>> drained = new ArrayList<>();
            if (deviceData != DeviceData.NONE) {
                for (int lane = 0; lane < devices.lanes(); lane++) {
                    int index = lane;
                    drained.add(workers.submit(() -> devices.drain(index, deviceData == DeviceData.TO_END)));
                }
            }
            if (deviceData == DeviceData.READY) {
                workers.awaitAllOrFailure();
                throwFailed(drained);
                taken = pages.take();
            }
            PageSet passPages = taken;
            // The pages are sent by this thread (a lane that fails interrupts it); whichever fails first ends
            // the pass, and the lanes still running are interrupted as the group closes.
            TaskGroup.Task<PageSender.Result> paging = workers.runHere(() -> sender.sendPages(iteration, passPages, source));
            workers.awaitAllOrFailure();
            throwFailed(drained);
            sent = join(paging);
            deviceBytes = 0;
            for (TaskGroup.Task<Long> lane : drained) {
                deviceBytes += join(lane);
            }
        }
        // Both are queued on the channels: the iteration ends after them on every channel, and after the last
        // pass so do the channels, with no second wait.
        if (deviceData == DeviceData.TO_END) {
            sender.endIterationAndFinish(iteration);
        } else {
            sender.endIteration(iteration);
        }
        return new Result(sent.pages(), sent.zeroPages(), sent.wireBytes(), sent.plainWireBytes(), deviceBytes);
    }

    /** A device lane's failure, if one failed: it says more than the pages' broken channel. */
    private static void throwFailed(List<TaskGroup.Task<Long>> lanes) throws ProtocolException, MigrationFailure, InterruptedException {
        for (TaskGroup.Task<Long> lane : lanes) {
            if (lane.failed()) {
                join(lane);
            }
        }
    }

    private static <T> T join(TaskGroup.Task<T> task) throws ProtocolException, MigrationFailure, InterruptedException {
        try {
            return task.join();
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof ProtocolException p) {
                throw p;
            }
            if (cause instanceof MigrationFailure f) {
                throw f;
            }
            if (cause instanceof InterruptedException i) {
                throw i;
            }
            if (cause instanceof RuntimeException r) {
                throw r;
            }
            throw new MigrationFailure(MigrationFailure.INTERNAL, "sending device data: " + cause);
        }
    }
}
