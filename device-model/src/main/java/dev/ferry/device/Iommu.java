package dev.ferry.device;

import dev.ferry.device.memory.GuestMemory;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The VM's IOMMU: every device DMA goes through it.
 *
 * <p>Guest memory is mapped at IOVA {@code [0, memory)}; DMA writes there mark the DMA dirty log
 * while DIRTY_TRACKING is on (M1). Under the VM's P2P policy (M2) each device's MMIO BAR is mapped
 * at {@link #barAddress(int)} so that peers can write its registers; an 8-byte write there becomes
 * an MMIO write to the peer.
 */
public final class Iommu {
    /** Where peer BARs are mapped: far above any guest memory. */
    public static final long P2P_WINDOW = 1L << 40;
    /** One BAR per device slot: 512 eight-byte registers. */
    public static final int BAR_BYTES = 4096;

    private final GuestMemory memory;
    private final DmaObserver observer;
    private volatile Map<Long, Device> bars = Collections.emptyMap();

    public Iommu(GuestMemory memory, DmaObserver observer) {
        this.memory = memory;
        this.observer = observer;
    }

    public GuestMemory memory() {
        return memory;
    }

    /** DIRTY_TRACKING on: DMA writes to guest memory are logged from now on, in an empty log. */
    public void startDirtyTracking() {
        memory.dmaLog().start();
    }

    /** DIRTY_TRACKING off; what was logged stays readable. */
    public void stopDirtyTracking() {
        memory.dmaLog().stop();
    }

    public boolean dirtyTracking() {
        return memory.dmaLog().isLogging();
    }

    public static long barAddress(int slot) {
        return P2P_WINDOW + (long) slot * BAR_BYTES;
    }

    /** Maps exactly these devices' BARs for peer DMA (M2); an empty collection unmaps all. */
    public void mapPeers(Collection<Device> devices) {
        Map<Long, Device> mapped = new TreeMap<>();
        for (Device device : devices) {
            mapped.put(barAddress(device.slot()), device);
        }
        bars = Collections.unmodifiableMap(mapped);
    }

    public boolean p2pMapped() {
        return !bars.isEmpty();
    }

    /** Doorbell IOVAs of every mapped peer except {@code initiator}. */
    public List<Long> peerDoorbells(Device initiator) {
        List<Long> doorbells = new ArrayList<>();
        for (Map.Entry<Long, Device> bar : bars.entrySet()) {
            if (bar.getValue() != initiator) {
                doorbells.add(bar.getKey() + (long) Device.REG_DOORBELL * 8);
            }
        }
        return doorbells;
    }

    public void write(Device initiator, long iova, byte[] src, int off, int length) throws IommuFault {
        observer.started(initiator, iova, length, true);
        try {
            if (inGuestMemory(iova, length)) {
                memory.dmaWrite(iova, src, off, length);
                return;
            }
            Device peer = bars.get(iova & ~(long) (BAR_BYTES - 1));
            if (peer == null) {
                throw new IommuFault(String.format("DMA write to unmapped IOVA 0x%x (+%d) by %s", iova, length, initiator.id()));
            }
            if (length != 8 || (iova & 7) != 0) {
                throw new IommuFault(String.format("P2P write to 0x%x must be one aligned 8-byte register", iova));
            }
            long value = 0;
            for (int i = 7; i >= 0; i--) {
                value = (value << 8) | (src[off + i] & 0xff);
            }
            peer.mmioWrite((int) ((iova & (BAR_BYTES - 1)) >>> 3), value, MmioSource.P2P);
        } finally {
            observer.finished(initiator, iova, length, true);
        }
    }

    public void read(Device initiator, long iova, byte[] dst, int off, int length) throws IommuFault {
        observer.started(initiator, iova, length, false);
        try {
            if (!inGuestMemory(iova, length)) {
                throw new IommuFault(String.format("DMA read from unmapped IOVA 0x%x (+%d) by %s", iova, length, initiator.id()));
            }
            memory.read(iova, dst, off, length);
        } finally {
            observer.finished(initiator, iova, length, false);
        }
    }

    private boolean inGuestMemory(long iova, int length) {
        return iova >= 0 && length >= 0 && iova + length <= memory.sizeBytes();
    }
}
