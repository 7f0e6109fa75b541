package dev.ferry.example.copier;

import dev.ferry.device.migration.StreamFormatException;
import dev.ferry.device.spi.DeviceContext;
import dev.ferry.device.spi.DeviceFunction;
import dev.ferry.device.spi.DeviceKindProvider;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInput;
import java.io.DataInputStream;
import java.io.DataOutput;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.SplittableRandom;

/**
 * A copier with a bug on purpose, for showing what the conformance kit reports: when it loads its registers it
 * forgets the checksum, so a migrated copier is not the copier that was saved. Every rule about the state
 * machine still holds; the rules that compare a loaded device with its source (W2, W3, W5) do not.
 */
public final class ForgetfulCopierKind implements DeviceKindProvider {
    @Override
    public String name() {
        return "forgetful-copier";
    }

    @Override
    public long defaultMemoryBytes() {
        return 64L << 10;
    }

    @Override
    public DeviceFunction create(DeviceContext context) {
        CopierDevice copier = new CopierDevice(context);
        return new DeviceFunction() {
            @Override
            public void execute(int register, long value) throws dev.ferry.device.IommuFault, InterruptedException {
                copier.execute(register, value);
            }

            @Override
            public int registerBytes() {
                return copier.registerBytes();
            }

            @Override
            public void saveRegisters(DataOutput out) throws IOException {
                copier.saveRegisters(out);
            }

            @Override
            public void loadRegisters(DataInput in) throws IOException, StreamFormatException {
                byte[] registers = new byte[copier.registerBytes()];
                in.readFully(registers);
                ByteArrayOutputStream forgotten = new ByteArrayOutputStream();
                try (DataOutputStream out = new DataOutputStream(forgotten)) {
                    out.write(registers, 0, registers.length - 8);
                    out.writeLong(0); // the bug: the checksum is not restored
                }
                copier.loadRegisters(new DataInputStream(new ByteArrayInputStream(forgotten.toByteArray())));
            }

            @Override
            public void resetRegisters() {
                copier.resetRegisters();
            }

            @Override
            public long workloadDoorbell(SplittableRandom random) {
                return copier.workloadDoorbell(random);
            }
        };
    }
}
