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
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A storage controller: one namespace of 4 KiB blocks in device memory (default 16 MiB), data
 * buffers and a completion queue in guest memory. A write command DMA-reads a guest buffer into a
 * block, a read DMA-writes a block into a guest buffer; each command posts a 16-byte completion
 * entry by DMA and raises an interrupt. A P2P target: a peer ringing its doorbell submits a command,
 * as a GPU reading storage directly does. NDMA; pre-copies its namespace by default, since most of
 * it stays as it was from one iteration to the next.
 *
 * <p>The ring area holds the completion queue in its first 4 KiB and the data buffers after it.
 */
final class NvmeDevice implements DeviceFunction {
    /** Doorbell: write the guest buffer the argument selects into the block it selects. */
    static final int OP_WRITE = 1;
    /** Doorbell: read the block the argument selects into the guest buffer it selects. */
    static final int OP_READ = 2;
    /** Doorbell: flush; nothing is cached, so it only completes. */
    static final int OP_FLUSH = 3;
    static final int BLOCK_BYTES = PageGeometry.PAGE_SIZE;
    static final int COMPLETION_BYTES = 16;
    private static final int COMPLETION_QUEUE_BYTES = 4096;

    private final Ring ring = new Ring();
    private long commands;
    private long blocksRead;
    private long blocksWritten;
    private long checksum;

    private final byte[] block = new byte[BLOCK_BYTES];
    private final byte[] completion = new byte[COMPLETION_BYTES];

    private final DeviceContext device;

    NvmeDevice(DeviceContext device) {
        this.device = device;
    }

    @Override
    public void execute(int register, long value) throws IommuFault, InterruptedException {
        if (register != Registers.DOORBELL) {
            ring.write(register, value);
            return;
        }
        switch (Mix.op(value)) {
            case OP_WRITE -> write(Mix.arg(value));
            case OP_READ -> read(Mix.arg(value));
            case OP_FLUSH -> complete(OP_FLUSH, 0);
            default -> {
                // An unknown opcode is ignored, as a register write with no effect.
            }
        }
    }

    private long buffers() {
        return Math.max(0, (ring.size() - COMPLETION_QUEUE_BYTES) / BLOCK_BYTES);
    }

    private long bufferAddress(long arg) {
        return ring.base() + COMPLETION_QUEUE_BYTES + Mix.index(Mix.mix(arg, 1), buffers()) * BLOCK_BYTES;
    }

    private long blockAddress(long arg) {
        return Mix.index(arg, device.memoryBytes() / BLOCK_BYTES) * BLOCK_BYTES;
    }

    private void write(long arg) throws IommuFault, InterruptedException {
        if (buffers() == 0) {
            return;
        }
        device.dmaRead(bufferAddress(arg), block, 0, BLOCK_BYTES);
        long address = blockAddress(arg);
        device.writeMemory(address, block, 0, BLOCK_BYTES);
        blocksWritten++;
        checksum = Mix.mix(checksum, block, 0, BLOCK_BYTES);
        complete(OP_WRITE, address);
    }

    private void read(long arg) throws IommuFault {
        if (buffers() == 0) {
            return;
        }
        long address = blockAddress(arg);
        device.readMemory(address, block, 0, BLOCK_BYTES);
        device.dmaWrite(bufferAddress(arg), block, 0, BLOCK_BYTES);
        blocksRead++;
        checksum = Mix.mix(checksum, block, 0, BLOCK_BYTES);
        complete(OP_READ, address);
    }

    /** Posts the completion entry (command id, opcode and block, status) into the queue by DMA. */
    private void complete(int op, long address) throws IommuFault {
        if (ring.size() < COMPLETION_QUEUE_BYTES) {
            return;
        }
        Mix.putLong(completion, 0, commands);
        Mix.putLong(completion, 8, ((long) op << 56) | (address / BLOCK_BYTES));
        long slot = commands % (COMPLETION_QUEUE_BYTES / COMPLETION_BYTES);
        device.dmaWrite(ring.base() + slot * COMPLETION_BYTES, completion, 0, COMPLETION_BYTES);
        commands++;
        checksum = Mix.mix(checksum, commands);
        device.raiseInterrupt();
    }

    @Override
    public int registerBytes() {
        return Ring.BYTES + 4 * 8;
    }

    @Override
    public void saveRegisters(DataOutput out) throws IOException {
        ring.save(out);
        out.writeLong(commands);
        out.writeLong(blocksRead);
        out.writeLong(blocksWritten);
        out.writeLong(checksum);
    }

    @Override
    public void loadRegisters(DataInput in) throws IOException, StreamFormatException {
        ring.load(in);
        commands = in.readLong();
        blocksRead = in.readLong();
        blocksWritten = in.readLong();
        checksum = in.readLong();
    }

    @Override
    public void resetRegisters() {
        ring.reset();
        commands = blocksRead = blocksWritten = checksum = 0;
    }

    @Override
    public long workloadDoorbell(SplittableRandom random) {
        int op = switch (random.nextInt(8)) {
            case 0 -> OP_FLUSH;
            case 1, 2, 3 -> OP_WRITE;
            default -> OP_READ;
        };
        return Mix.doorbell(op, random.nextLong());
    }

    @Override
    public void describeRegisters(Map<String, Long> out) {
        out.put("commands", commands);
        out.put("blocksRead", blocksRead);
        out.put("blocksWritten", blocksWritten);
    }
}
