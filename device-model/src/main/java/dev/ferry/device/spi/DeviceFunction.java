package dev.ferry.device.spi;

import dev.ferry.device.IommuFault;
import dev.ferry.device.migration.StreamFormatException;
import java.io.DataInput;
import java.io.DataOutput;
import java.io.IOException;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * What a kind implements for one device: its registers, the work a register write starts, and its
 * registers' part of the state image. The core owns everything else (SPEC §1–§3): it queues MMIO, calls
 * {@link #execute} on the device's engine thread only while the device may work, waits for it before a freeze,
 * streams the device memory and this image, and checks what it loads.
 *
 * <h2>Threads and the state image</h2>
 * {@link #execute} runs on the device's engine thread, one write at a time, with no lock held: it may DMA and
 * block. Every other method is called while the engine is idle and held, so a function needs no locking of
 * its own. The registers are the whole of the device's state outside its device memory and its queue of
 * MMIO writes: whatever {@link #execute} depends on must be saved by {@link #saveRegisters}, or the device does
 * not migrate (a digest of the source and of the copy differ).
 */
public interface DeviceFunction {

    /**
     * Runs one register write (the core queued it while the device was RUNNING): DMA, interrupts, changes of
     * registers and device memory. {@code register} is in {@code [0, Registers.COUNT)}.
     *
     * @throws IommuFault           a DMA the IOMMU refused (counted; the operation is dropped, as hardware would)
     * @throws InterruptedException the device is being removed
     */
    void execute(int register, long value) throws IommuFault, InterruptedException;

    /** The exact number of bytes {@link #saveRegisters} writes now; the stop-and-copy prediction counts it (W9). */
    int registerBytes();

    /** Writes the registers for the STATE record. */
    void saveRegisters(DataOutput out) throws IOException;

    /**
     * Reads what {@link #saveRegisters} wrote (of this kind's {@link DeviceKindProvider#formatVersion()}) and takes
     * it. Throws {@link StreamFormatException} for values that cannot be a state of this device: the load
     * fails and the device goes to ERROR (D8). The core checks that nothing is left over.
     */
    void loadRegisters(DataInput in) throws IOException, StreamFormatException;

    /** Back to the registers of a new device: on reset (D5) and when RESUMING is entered (D7). */
    void resetRegisters();

    /** A doorbell value the synthetic guest driver rings on this kind (register {@link Registers#DOORBELL}). */
    long workloadDoorbell(SplittableRandom random);

    /** Whether this kind writes a peer's doorbell through the IOMMU when asked to (a P2P initiator). */
    default boolean initiatesP2p() {
        return false;
    }

    /** The doorbell that makes this device write a peer's doorbell; only for P2P initiators. */
    default long p2pDoorbell(SplittableRandom random) {
        throw new UnsupportedOperationException("this kind does not initiate P2P");
    }

    /** Whether the device has timed work of its own ({@link #timedWork}) in this configuration. */
    default boolean hasTimedWork() {
        return false;
    }

    /**
     * The device's own timed work, with the device's lock held and only while RUNNING (D12): {@code nanos} of
     * working time passed. Must be short (the lock is the one MMIO and state writes take): do a bounded step
     * and return true to be called again at once. A kind whose bulk state changes whole here calls
     * {@link DeviceContext#bulkStateChanged()} before it rewrites its memory (W8).
     */
    default boolean timedWork(long nanos) {
        return false;
    }

    /** Register values worth showing beside the device's stats (packets, fences, ...). */
    default void describeRegisters(Map<String, Long> out) {
    }
}
