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
 * A crypto engine: DMA-reads a guest page, encrypts it in place with a key stream from its key
 * store (device memory), and evolves the key. It has no NDMA: like devices whose control sits in the
 * migrated function, it cannot be told to stop DMA while running, so a VM that holds one keeps P2P
 * off (M2).
 */
final class CryptoDevice implements DeviceFunction {
    /** Doorbell: encrypt the guest page the argument selects, in place. */
    static final int OP_ENCRYPT = 1;

    private final Ring ring = new Ring();
    private long jobs;
    private long checksum;

    private final byte[] data = new byte[PageGeometry.PAGE_SIZE];
    private final byte[] key = new byte[PageGeometry.PAGE_SIZE];

    private final DeviceContext device;

    CryptoDevice(DeviceContext device) {
        this.device = device;
    }

    @Override
    public void execute(int register, long value) throws IommuFault, InterruptedException {
        if (register != Registers.DOORBELL) {
            ring.write(register, value);
        } else if (Mix.op(value) == OP_ENCRYPT) {
            encrypt(Mix.arg(value));
        }
    }

    private void encrypt(long arg) throws IommuFault, InterruptedException {
        long page = Mix.index(arg, device.guestMemoryBytes() / PageGeometry.PAGE_SIZE) * PageGeometry.PAGE_SIZE;
        device.dmaRead(page, data, 0, PageGeometry.PAGE_SIZE);

        long keyAddress = Mix.index(jobs, device.memoryBytes() / PageGeometry.PAGE_SIZE) * PageGeometry.PAGE_SIZE;
        device.readMemory(keyAddress, key, 0, PageGeometry.PAGE_SIZE);
        long stream = Mix.mix(checksum, jobs);
        for (int i = 0; i < PageGeometry.PAGE_SIZE; i += 8) {
            long k = Mix.getLong(key, i);
            stream = Mix.mix(stream, k);
            long plain = Mix.getLong(data, i);
            Mix.putLong(data, i, plain ^ stream);
            Mix.putLong(key, i, Mix.mix(k, plain));
        }
        device.dmaWrite(page, data, 0, PageGeometry.PAGE_SIZE);
        device.writeMemory(keyAddress, key, 0, PageGeometry.PAGE_SIZE);
        jobs++;
        checksum = Mix.mix(checksum, stream);
        device.raiseInterrupt();
    }

    @Override
    public int registerBytes() {
        return Ring.BYTES + 2 * 8;
    }

    @Override
    public void saveRegisters(DataOutput out) throws IOException {
        ring.save(out);
        out.writeLong(jobs);
        out.writeLong(checksum);
    }

    @Override
    public void loadRegisters(DataInput in) throws IOException, StreamFormatException {
        ring.load(in);
        jobs = in.readLong();
        checksum = in.readLong();
    }

    @Override
    public void resetRegisters() {
        ring.reset();
        jobs = checksum = 0;
    }

    @Override
    public long workloadDoorbell(SplittableRandom random) {
        return Mix.doorbell(OP_ENCRYPT, random.nextLong());
    }

    @Override
    public void describeRegisters(Map<String, Long> out) {
        out.put("jobs", jobs);
    }
}
