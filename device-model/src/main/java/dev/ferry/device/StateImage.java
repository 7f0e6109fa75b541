package dev.ferry.device;

import dev.ferry.device.memory.DirtyBitmap;
import dev.ferry.device.memory.PageStore;
import dev.ferry.device.migration.DeviceImage;
import dev.ferry.device.migration.StreamFormatException;
import dev.ferry.device.spi.DeviceFunction;
import dev.ferry.device.spi.Registers;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The state image codec: what a device's migrated state is (its kind, configuration, device memory, the
 * kind's registers and the queue of MMIO writes) and how the STATE record carries the last two. The data window
 * reads it ({@code SaveStream}) and loads into it ({@code LoadStream}); the digest hashes it. Every method is
 * called with the device's lock held and its engine idle.
 */
final class StateImage implements DeviceImage {
    /** A queued write in the STATE record: register {@code u16}, value {@code u64}. */
    private static final int QUEUED_WRITE_BYTES = 2 + 8;

    private final String kind;
    private final int formatVersion;
    private final byte[] configBytes;
    private final PageStore memory;
    private final DirtyBitmap memoryLog;
    private final Engine engine;
    private DeviceFunction function;

    StateImage(DeviceKind kind, byte[] configBytes, PageStore memory, DirtyBitmap memoryLog, Engine engine) {
        this.kind = kind.label();
        this.formatVersion = kind.formatVersion();
        this.configBytes = configBytes;
        this.memory = memory;
        this.memoryLog = memoryLog;
        this.engine = engine;
    }

    void bind(DeviceFunction deviceFunction) {
        this.function = deviceFunction;
    }

    @Override
    public String kind() {
        return kind;
    }

    @Override
    public int formatVersion() {
        return formatVersion;
    }

    @Override
    public byte[] configBytes() {
        return configBytes;
    }

    @Override
    public PageStore memory() {
        return memory;
    }

    @Override
    public DirtyBitmap memoryLog() {
        return memoryLog;
    }

    /** The size {@link #captureState()} would have now: the registers, then the queued writes (W9). */
    long stateBytes() {
        return function.registerBytes() + 4 + (long) engine.queued() * QUEUED_WRITE_BYTES;
    }

    @Override
    public byte[] captureState() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream((int) stateBytes());
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            function.saveRegisters(out);
            out.writeInt(engine.queued());
            for (Engine.QueuedWrite work : engine.queue()) {
                out.writeShort(work.register());
                out.writeLong(work.value());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    @Override
    public void loadState(byte[] bytes) throws StreamFormatException {
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
            function.loadRegisters(in);
            int queued = in.readInt();
            if (queued < 0 || queued > Engine.MAX_QUEUED) {
                throw new StreamFormatException("queued work count " + queued + " outside [0, " + Engine.MAX_QUEUED + "]");
            }
            List<Engine.QueuedWrite> work = new ArrayList<>(queued);
            for (int i = 0; i < queued; i++) {
                int register = in.readUnsignedShort();
                if (register >= Registers.COUNT) {
                    throw new StreamFormatException("queued write to register " + register + " outside the BAR");
                }
                work.add(new Engine.QueuedWrite(register, in.readLong()));
            }
            if (in.available() > 0) {
                throw new StreamFormatException(in.available() + " trailing bytes after the device state");
            }
            engine.replaceQueue(work);
        } catch (EOFException e) {
            throw new StreamFormatException("device state truncated");
        } catch (IOException e) {
            throw new StreamFormatException("device state unreadable: " + e.getMessage());
        }
    }

    /** D5, D7: the state of a new device: memory zero, no logging, nothing queued, the kind's registers reset. */
    void reset() {
        memory.clear();
        memoryLog.stop();
        memoryLog.clear();
        engine.clearQueue();
        function.resetRegisters();
    }
}
