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
 * One pass over memory on the source (S1, each S2 iteration, S5): the pass's pages and, at the same
 * time, the devices' data, both on the data channels (F10), so that neither waits for the other; then
 * DATA_END on every channel, after both. If either fails, or the flow is stopped, the other is
 * interrupted and has ended before the pass throws, so nothing of a failed pass still reads memory
 * that is about to be rolled back.
 */
final class Pass {
    /**
     * What a pass sent: its pages (zero ones among them), their bytes on the wire, what those would have been
     * uncompressed (the same without compression), and device bytes.
     */
    record Result(long pages, long zeroPages, long pageWireBytes, long plainPageWireBytes, long deviceBytes) {
    }

    /** How the pass's device data is sent: nothing (the first pass), what is ready, or to the end. */
    enum DeviceData { NONE, READY, TO_END }

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

    /**
     * Runs pass {@code iteration}.
     *
     */
    Result run(int iteration, PageSet pages, DeviceData deviceData)
            throws ProtocolException, MigrationFailure, InterruptedException {
        PageSender.Result sent;
        long deviceBytes;
        try (TaskGroup workers = new TaskGroup(executor, "pass " + iteration)) {
            TaskGroup.Task<PageSender.Result> paging = workers.submit(() -> sender.sendPages(iteration, pages, source));
            List<TaskGroup.Task<Long>> drained = new ArrayList<>();
            if (deviceData != DeviceData.NONE) {
                for (int lane = 0; lane < devices.lanes(); lane++) {
                    int index = lane;
                    drained.add(workers.submit(() -> devices.drain(index, deviceData == DeviceData.TO_END)));
                }
            }
            // Whichever fails first ends the pass; the others are interrupted as the group closes.
            workers.awaitAllOrFailure();
            for (TaskGroup.Task<Long> lane : drained) {
                if (lane.failed()) {
                    join(lane);
                }
            }
            sent = join(paging);
            deviceBytes = 0;
            for (TaskGroup.Task<Long> lane : drained) {
                deviceBytes += join(lane);
            }
        }
        // Both are queued on the channels: the iteration ends after them on every channel.
        sender.endIteration(iteration);
        return new Result(sent.pages(), sent.zeroPages(), sent.wireBytes(), sent.plainWireBytes(), deviceBytes);
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
