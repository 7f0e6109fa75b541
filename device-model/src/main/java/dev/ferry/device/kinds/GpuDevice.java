package dev.ferry.device.kinds;

import dev.ferry.device.memory.PageGeometry;
import dev.ferry.device.IommuFault;
import dev.ferry.device.migration.StreamFormatException;
import dev.ferry.device.spi.DeviceContext;
import dev.ferry.device.spi.DeviceFunction;
import dev.ferry.device.spi.Registers;
import java.io.DataInput;
import java.io.DataOutput;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A GPU: device memory (default 64 MiB) with an internal dirty log, so it pre-copies; compute jobs
 * that DMA guest pages in, fold them into device memory and DMA results out; and P2P jobs that ring
 * a peer's doorbell through the IOMMU. NDMA.
 *
 * <p>With {@link DeviceConfig#reinitMs()} it re-partitions its memory every so often while it works (W8):
 * a new partition key, and every allocated page rewritten under it, so that what pre-copy sent is no longer
 * the bulk state and the new bulk state must be sent again. The rewrite goes in steps of
 * {@link #REPARTITION_STEP_PAGES} pages, each under the device's lock and only while RUNNING, so a freeze
 * never waits for a whole re-partition; where it stands is in the registers, so a re-partition that a
 * migration interrupts goes on in the copy.
 */
final class GpuDevice implements DeviceFunction {
    /** Doorbell: run a compute job on the guest page the argument selects. */
    static final int OP_COMPUTE = 1;
    /** Doorbell: write a peer's doorbell through the IOMMU (P2P). */
    static final int OP_P2P = 2;
    private static final int RESULT_BYTES = 64;
    /** Pages one step of a re-partition rewrites: 256 KiB, well under a millisecond of the lock. */
    static final int REPARTITION_STEP_PAGES = 64;
    private static final long IDLE = -1;

    private final Ring ring = new Ring();
    private long fence;
    private long checksum;
    private long p2pCursor;
    private long p2pSent;
    // Re-partitioning (W8), guarded by the device's lock; the engine never touches them.
    private long partitionKey;
    private long partitions;
    private long repartitionNext = IDLE;
    /** Working time since the last re-partition began; timing, not state, so not migrated. */
    private long sinceRepartitionNanos;
    private final byte[] partitionPage = new byte[PageGeometry.PAGE_SIZE];

    private final byte[] input = new byte[PageGeometry.PAGE_SIZE];
    private final byte[] tile = new byte[PageGeometry.PAGE_SIZE];
    private final byte[] result = new byte[RESULT_BYTES];
    private final byte[] register = new byte[8];

    private final DeviceContext device;

    GpuDevice(DeviceContext device) {
        this.device = device;
    }

    @Override
    public void execute(int reg, long value) throws IommuFault, InterruptedException {
        if (reg != Registers.DOORBELL) {
            ring.write(reg, value);
            return;
        }
        switch (Mix.op(value)) {
            case OP_COMPUTE -> compute(Mix.arg(value));
            case OP_P2P -> peerWrite(Mix.arg(value));
            default -> {
            }
        }
    }

    private void compute(long arg) throws IommuFault, InterruptedException {
        long guestPages = device.guestMemoryBytes() / PageGeometry.PAGE_SIZE;
        device.dmaRead(Mix.index(arg, guestPages) * PageGeometry.PAGE_SIZE, input, 0, PageGeometry.PAGE_SIZE);

        long tilePages = device.memoryBytes() / PageGeometry.PAGE_SIZE;
        long tileAddress = Mix.index(Mix.mix(checksum, arg), tilePages) * PageGeometry.PAGE_SIZE;
        device.readMemory(tileAddress, tile, 0, PageGeometry.PAGE_SIZE);
        for (int i = 0; i < PageGeometry.PAGE_SIZE; i += 8) {
            Mix.putLong(tile, i, Mix.mix(Mix.getLong(tile, i) + fence, Mix.getLong(input, i)));
        }
        device.writeMemory(tileAddress, tile, 0, PageGeometry.PAGE_SIZE);
        checksum = Mix.mix(checksum, tile, 0, PageGeometry.PAGE_SIZE);

        long h = checksum;
        for (int i = 0; i < RESULT_BYTES; i += 8) {
            h = Mix.mix(h, fence);
            Mix.putLong(result, i, h);
        }
        long out = Mix.index(Mix.mix(arg, fence), guestPages) * PageGeometry.PAGE_SIZE + (fence % (PageGeometry.PAGE_SIZE / RESULT_BYTES)) * RESULT_BYTES;
        device.dmaWrite(out, result, 0, RESULT_BYTES);
        fence++;
        device.raiseInterrupt();
    }

    private void peerWrite(long arg) throws IommuFault {
        List<Long> peers = device.peerDoorbells();
        if (peers.isEmpty()) {
            device.countP2pUnavailable();
            return;
        }
        long target = peers.get((int) Mix.index(p2pCursor, peers.size()));
        p2pCursor++;
        // Every kind's op 1 is its main job: a peer NIC receives a packet, a peer GPU computes.
        Mix.putLong(register, 0, Mix.doorbell(1, Mix.mix(checksum, arg)));
        device.dmaWrite(target, register, 0, 8);
        p2pSent++;
        checksum = Mix.mix(checksum, p2pSent);
    }

    @Override
    public boolean hasTimedWork() {
        return device.config().reinitMs() > 0;
    }

    /**
     * W8: every {@code reinitMs} of working time a re-partition begins: a new key, a new round of initial
     * data (before any page changes), then every allocated page rewritten under the key, a step at a time.
     */
    @Override
    public boolean timedWork(long nanos) {
        long reinitMs = device.config().reinitMs();
        if (reinitMs == 0) {
            return false;
        }
        if (repartitionNext == IDLE) {
            sinceRepartitionNanos += nanos;
            if (sinceRepartitionNanos < reinitMs * 1_000_000L) {
                return false;
            }
            sinceRepartitionNanos = 0;
            partitions++;
            partitionKey = Mix.mix(partitionKey, partitions);
            repartitionNext = 0;
            device.bulkStateChanged();
        }
        long pages = device.memoryBytes() / PageGeometry.PAGE_SIZE;
        long page = repartitionNext;
        for (int done = 0; done < REPARTITION_STEP_PAGES; done++) {
            page = device.nextAllocatedPage(page);
            if (page >= pages) {
                break;
            }
            repartition(page);
            page++;
        }
        repartitionNext = page >= pages ? IDLE : page;
        return repartitionNext != IDLE;
    }

    /** Rewrites one page under the current key: a bijection, so nothing is lost, and every byte moves. */
    private void repartition(long page) {
        long address = page * PageGeometry.PAGE_SIZE;
        device.readMemory(address, partitionPage, 0, PageGeometry.PAGE_SIZE);
        long key = Mix.mix(partitionKey, page);
        for (int i = 0; i < PageGeometry.PAGE_SIZE; i += 8) {
            key = Mix.mix(key, i);
            Mix.putLong(partitionPage, i, Mix.getLong(partitionPage, i) ^ key);
        }
        device.writeMemory(address, partitionPage, 0, PageGeometry.PAGE_SIZE);
    }

    @Override
    public int registerBytes() {
        return Ring.BYTES + 7 * 8;
    }

    @Override
    public void saveRegisters(DataOutput out) throws IOException {
        ring.save(out);
        out.writeLong(fence);
        out.writeLong(checksum);
        out.writeLong(p2pCursor);
        out.writeLong(p2pSent);
        out.writeLong(partitionKey);
        out.writeLong(partitions);
        out.writeLong(repartitionNext);
    }

    @Override
    public void loadRegisters(DataInput in) throws IOException, StreamFormatException {
        ring.load(in);
        fence = in.readLong();
        checksum = in.readLong();
        p2pCursor = in.readLong();
        p2pSent = in.readLong();
        long key = in.readLong();
        long count = in.readLong();
        long next = in.readLong();
        if (count < 0 || next < IDLE || next >= device.memoryBytes() / PageGeometry.PAGE_SIZE) {
            throw new StreamFormatException("gpu re-partition " + count + " at page " + next + " outside its memory");
        }
        partitionKey = key;
        partitions = count;
        repartitionNext = next;
        sinceRepartitionNanos = 0;
    }

    @Override
    public void resetRegisters() {
        ring.reset();
        fence = checksum = p2pCursor = p2pSent = 0;
        partitionKey = partitions = 0;
        repartitionNext = IDLE;
        sinceRepartitionNanos = 0;
    }

    @Override
    public long workloadDoorbell(SplittableRandom random) {
        return Mix.doorbell(OP_COMPUTE, random.nextLong());
    }

    @Override
    public boolean initiatesP2p() {
        return true;
    }

    @Override
    public long p2pDoorbell(SplittableRandom random) {
        return Mix.doorbell(OP_P2P, random.nextLong());
    }

    @Override
    public void describeRegisters(Map<String, Long> out) {
        out.put("fence", fence);
        out.put("p2pSent", p2pSent);
        out.put("partitions", partitions);
    }
}
