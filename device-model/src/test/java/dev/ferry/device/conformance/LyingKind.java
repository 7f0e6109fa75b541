package dev.ferry.device.conformance;

import dev.ferry.device.spi.DeviceContext;
import dev.ferry.device.spi.DeviceFunction;
import dev.ferry.device.spi.DeviceKindProvider;
import java.io.DataInput;
import java.io.DataOutput;
import java.io.IOException;
import java.util.SplittableRandom;

/**
 * A kind that breaks W9 on purpose: it says its registers take 8 bytes and writes 16, so its stop-and-copy
 * prediction is short by 8 bytes. Everything else about it is right, so only W9 may be reported.
 */
public final class LyingKind implements DeviceKindProvider {
    @Override
    public String name() {
        return "lying";
    }

    @Override
    public long defaultMemoryBytes() {
        return 8192;
    }

    @Override
    public DeviceFunction create(DeviceContext context) {
        return new DeviceFunction() {
            private long count;
            private final byte[] one = new byte[1];

            @Override
            public void execute(int register, long value) {
                count++;
                one[0] = (byte) value;
                context.writeMemory(count % context.memoryBytes(), one, 0, 1);
                context.raiseInterrupt();
            }

            @Override
            public int registerBytes() {
                return 8;
            }

            @Override
            public void saveRegisters(DataOutput out) throws IOException {
                out.writeLong(count);
                out.writeLong(~count);
            }

            @Override
            public void loadRegisters(DataInput in) throws IOException {
                count = in.readLong();
                in.readLong();
            }

            @Override
            public void resetRegisters() {
                count = 0;
            }

            @Override
            public long workloadDoorbell(SplittableRandom random) {
                return random.nextLong();
            }
        };
    }
}
