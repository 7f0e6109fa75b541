package dev.ferry.device.kinds;

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
 * A network adapter: receive and transmit rings in guest memory, reached by DMA, and a flow table
 * in device memory that every packet updates. A P2P target: a peer ringing its doorbell delivers a
 * packet. NDMA; no pre-copy by default (its flow table then moves whole in stop-and-copy).
 */
final class NicDevice implements DeviceFunction {
    /** Doorbell: a packet arrives from the wire and is written into the receive ring. */
    static final int OP_RECEIVE = 1;
    /** Doorbell: the guest queued a packet in the transmit ring. */
    static final int OP_TRANSMIT = 2;
    static final int SLOT_BYTES = 2048;
    private static final int FLOW_ENTRY_BYTES = 16;
    private static final int TX_BYTES = 256;

    private final Ring ring = new Ring();
    private long rxHead;
    private long txHead;
    private long rxPackets;
    private long txPackets;
    private long rxBytes;
    private long txBytes;
    private long checksum;

    private final byte[] packet = new byte[SLOT_BYTES];
    private final byte[] flowEntry = new byte[FLOW_ENTRY_BYTES];

    private final DeviceContext device;

    NicDevice(DeviceContext device) {
        this.device = device;
    }

    @Override
    public void execute(int register, long value) throws IommuFault, InterruptedException {
        if (register != Registers.DOORBELL) {
            ring.write(register, value);
            return;
        }
        switch (Mix.op(value)) {
            case OP_RECEIVE -> receive(Mix.arg(value));
            case OP_TRANSMIT -> transmit();
            default -> {
                // An unknown doorbell is ignored, as a register write with no effect.
            }
        }
    }

    private long slots() {
        return ring.size() / 2 / SLOT_BYTES;
    }

    private void receive(long arg) throws IommuFault {
        long slots = slots();
        if (slots == 0) {
            return;
        }
        int length = 64 + (int) Mix.index(Mix.mix(checksum, arg), SLOT_BYTES - 64);
        new SplittableRandom(Mix.mix(checksum, rxPackets)).nextBytes(packet);
        device.dmaWrite(ring.base() + (rxHead % slots) * SLOT_BYTES, packet, 0, length);
        rxHead++;
        rxPackets++;
        rxBytes += length;
        checksum = Mix.mix(checksum, packet, 0, length);
        updateFlow();
        device.raiseInterrupt();
    }

    private void transmit() throws IommuFault, InterruptedException {
        long slots = slots();
        if (slots == 0) {
            return;
        }
        device.dmaRead(ring.base() + ring.size() / 2 + (txHead % slots) * SLOT_BYTES, packet, 0, TX_BYTES);
        txHead++;
        txPackets++;
        txBytes += TX_BYTES;
        checksum = Mix.mix(checksum, packet, 0, TX_BYTES);
        updateFlow();
        device.raiseInterrupt();
    }

    private void updateFlow() {
        long entries = device.memoryBytes() / FLOW_ENTRY_BYTES;
        long entry = Mix.index(checksum, entries);
        Mix.putLong(flowEntry, 0, checksum);
        Mix.putLong(flowEntry, 8, rxPackets + txPackets);
        device.writeMemory(entry * FLOW_ENTRY_BYTES, flowEntry, 0, FLOW_ENTRY_BYTES);
    }

    @Override
    public int registerBytes() {
        return Ring.BYTES + 7 * 8;
    }

    @Override
    public void saveRegisters(DataOutput out) throws IOException {
        ring.save(out);
        out.writeLong(rxHead);
        out.writeLong(txHead);
        out.writeLong(rxPackets);
        out.writeLong(txPackets);
        out.writeLong(rxBytes);
        out.writeLong(txBytes);
        out.writeLong(checksum);
    }

    @Override
    public void loadRegisters(DataInput in) throws IOException, StreamFormatException {
        ring.load(in);
        rxHead = in.readLong();
        txHead = in.readLong();
        rxPackets = in.readLong();
        txPackets = in.readLong();
        rxBytes = in.readLong();
        txBytes = in.readLong();
        checksum = in.readLong();
    }

    @Override
    public void resetRegisters() {
        ring.reset();
        rxHead = txHead = rxPackets = txPackets = rxBytes = txBytes = checksum = 0;
    }

    @Override
    public long workloadDoorbell(SplittableRandom random) {
        return Mix.doorbell(random.nextBoolean() ? OP_RECEIVE : OP_TRANSMIT, random.nextLong());
    }

    @Override
    public void describeRegisters(Map<String, Long> out) {
        out.put("rxPackets", rxPackets);
        out.put("txPackets", txPackets);
        out.put("rxBytes", rxBytes);
        out.put("txBytes", txBytes);
    }
}
