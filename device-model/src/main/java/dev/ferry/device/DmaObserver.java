package dev.ferry.device;

/**
 * Sees every DMA the IOMMU carries, while it is in flight: the hook for tracing and for tests that
 * need to hold a DMA in flight. Called on the initiating device's engine thread.
 */
public interface DmaObserver {
    DmaObserver NONE = new DmaObserver() {
    };

    /** The DMA has started and has not touched its target yet. */
    default void started(Device initiator, long iova, int length, boolean write) {
    }

    /** The DMA has finished. */
    default void finished(Device initiator, long iova, int length, boolean write) {
    }
}
