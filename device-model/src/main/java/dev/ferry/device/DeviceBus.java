package dev.ferry.device;

import java.util.List;

/** The machine as one device sees it: the IOMMU for DMA, vCPUs for page requests, and the VM to notify. */
public interface DeviceBus {

    /** A DMA write through the IOMMU: guest memory, or a peer's MMIO under P2P. */
    void dmaWrite(Device initiator, long iova, byte[] src, int off, int length) throws IommuFault;

    /** A DMA read through the IOMMU from guest memory. */
    void dmaRead(Device initiator, long iova, byte[] dst, int off, int length) throws IommuFault;

    /** Guest memory size: the DMA-able range starts at IOVA 0. */
    long guestMemoryBytes();

    /** The IOVAs of the doorbell registers of every peer mapped for P2P, the initiator excluded. */
    List<Long> peerDoorbells(Device initiator);

    /**
     * A page request (PRI): blocks until a vCPU has completed it. Only devices configured with
     * {@code pri} call this.
     */
    void pageRequest(Device initiator, long iova) throws InterruptedException, IommuFault;

    /** A device's queued work or engine changed; wakes whoever waits for the VM to be idle. */
    void workChanged();
}
