package dev.ferry.device.spi;

import dev.ferry.device.DeviceConfig;
import dev.ferry.device.IommuFault;
import java.util.List;

/**
 * What the migration core gives a kind's {@link DeviceFunction}: its configuration, the machine (DMA through the
 * IOMMU, interrupts, the P2P peers) and its device memory. DMA and interrupts are for {@link DeviceFunction#execute}
 * only; the device memory may be used from any method of the function.
 */
public interface DeviceContext {

    /** The device's configuration: id, NDMA, pre-copy, memory size, re-initialisation period. */
    DeviceConfig config();

    /** A DMA write through the IOMMU: guest memory from IOVA 0, or a peer's register under P2P (M2). */
    void dmaWrite(long iova, byte[] src, int off, int length) throws IommuFault;

    /** A DMA read of guest memory through the IOMMU; with {@code pri} a page request precedes it (M4). */
    void dmaRead(long iova, byte[] dst, int off, int length) throws IommuFault, InterruptedException;

    /** Guest memory's size: the DMA-able range is {@code [0, guestMemoryBytes())}. */
    long guestMemoryBytes();

    /** The IOVAs of the doorbells of every peer mapped for P2P (empty while P2P is off). */
    List<Long> peerDoorbells();

    /** Raises the device's interrupt. */
    void raiseInterrupt();

    /** A P2P job that found no peer mapped: counted, and nothing else happens. */
    void countP2pUnavailable();

    /** The device memory's size in bytes. */
    long memoryBytes();

    /** Writes device memory; the internal dirty log marks the pages after the write (W4). */
    void writeMemory(long address, byte[] src, int off, int length);

    /** Reads device memory; memory never written reads as zeros. */
    void readMemory(long address, byte[] dst, int off, int length);

    /** The first page at or after {@code from} that was ever written, or the page count if none. */
    long nextAllocatedPage(long from);

    /**
     * W8: the device's bulk state is about to change whole (a re-partition): in a pre-copy session every page
     * becomes initial data again. Call it from {@link DeviceFunction#timedWork} before rewriting the memory, so
     * that each rewritten page is either ahead of the new round or marked dirty behind it.
     */
    void bulkStateChanged();
}
