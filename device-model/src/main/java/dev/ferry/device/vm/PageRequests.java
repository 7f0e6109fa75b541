package dev.ferry.device.vm;

import dev.ferry.device.Device;
import dev.ferry.device.IommuFault;
import dev.ferry.device.memory.GuestMemory;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Page requests (PRI) that devices raise and vCPUs complete. A device waiting here has DMA in
 * flight that only a running vCPU can finish: that is why the save flow keeps vCPUs running through
 * the vIOMMU grace state (S3) while NDMA drains such work, and only then stops them (S4).
 */
public final class PageRequests {
    private final GuestMemory memory;
    private final ConcurrentLinkedQueue<Request> pending = new ConcurrentLinkedQueue<>();
    private final Runnable wakeVcpus;
    private final long timeoutNanos;

    PageRequests(GuestMemory memory, Runnable wakeVcpus, long timeout, TimeUnit unit) {
        this.memory = memory;
        this.wakeVcpus = wakeVcpus;
        this.timeoutNanos = unit.toNanos(timeout);
    }

    private static final class Request {
        final long iova;
        final CountDownLatch done = new CountDownLatch(1);

        Request(long iova) {
            this.iova = iova;
        }
    }

    /** Blocks the device until a vCPU completes the request, or faults after the timeout. */
    void request(Device device, long iova) throws InterruptedException, IommuFault {
        Request request = new Request(iova);
        pending.add(request);
        wakeVcpus.run();
        if (!request.done.await(timeoutNanos, TimeUnit.NANOSECONDS)) {
            pending.remove(request);
            throw new IommuFault("page request for 0x" + Long.toHexString(iova) + " from " + device.id()
                    + " was not completed: no vCPU running");
        }
    }

    /** Called by a running vCPU: completes what is pending by touching each page. */
    int service() {
        int served = 0;
        Request request;
        while ((request = pending.poll()) != null) {
            if (request.iova >= 0 && request.iova < memory.sizeBytes()) {
                memory.readLong(request.iova);
            }
            request.done.countDown();
            served++;
        }
        return served;
    }

    int pending() {
        return pending.size();
    }
}
