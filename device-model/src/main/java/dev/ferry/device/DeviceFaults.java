package dev.ferry.device;

import dev.ferry.device.migration.TransitionStep;
import java.util.List;

/**
 * Faults a device injects into its own migration interface, for testing what a VMM does when a device
 * misbehaves in ways SPEC §1–§2 allow: a state write that fails (D2), window reads and writes that are short
 * or fail, a saved image that is damaged (found at D8 by the loader), a quiesce that takes long (D11, D12).
 * Behaviour, not state: not in the canonical configuration, so a device's data loads into a device with other
 * faults. {@link #NONE} injects nothing.
 *
 * @param stateWrites        state writes to fail, each once
 * @param windowReads        what reads of the data window do (a save session)
 * @param windowWrites       what writes of the data window do (a resume session)
 * @param corruptImageAtByte the byte at this offset of every saved stream is flipped as it is read, so the
 *                           loader's checksum fails (D8); -1 never
 * @param slowQuiesceMs      every wait for work in flight (priority steps 1 and 2) lasts at least this long
 */
public record DeviceFaults(List<StateWriteFault> stateWrites, WindowFault windowReads, WindowFault windowWrites,
                           long corruptImageAtByte, long slowQuiesceMs) {
    public static final DeviceFaults NONE = new DeviceFaults(List.of(), WindowFault.NONE, WindowFault.NONE, -1, 0);
    /** Longer would outlast the quiesce timeout and every flow's patience. */
    public static final long MAX_SLOW_QUIESCE_MS = 10_000;

    /**
     * Fails the {@code nth} state write (counted from 1 on this device) that reaches priority step {@code step}.
     *
     * @param intoError true: the write fails at that step into ERROR, the steps before it applied (D2's third
     *                  outcome); false: the device refuses the write before applying anything, state unchanged
     */
    public record StateWriteFault(TransitionStep step, int nth, boolean intoError) {
        public StateWriteFault {
            if (step == null) {
                throw DeviceModelException.invalid("a state write fault needs a step");
            }
            if (nth < 1) {
                throw DeviceModelException.invalid("a state write fault's nth counts from 1: " + nth);
            }
        }
    }

    /**
     * @param maxBytes       each read or write moves at most this many bytes (a short read or write); 0 no limit
     * @param failAfterBytes once a session has moved this many bytes, the next read or write fails; -1 never
     */
    public record WindowFault(int maxBytes, long failAfterBytes) {
        public static final WindowFault NONE = new WindowFault(0, -1);

        public WindowFault {
            if (maxBytes < 0) {
                throw DeviceModelException.invalid("a window fault's maxBytes must not be negative: " + maxBytes);
            }
            if (failAfterBytes < -1) {
                throw DeviceModelException.invalid("a window fault's failAfterBytes is -1 (never) or a byte count: " + failAfterBytes);
            }
        }

        boolean none() {
            return maxBytes == 0 && failAfterBytes < 0;
        }
    }

    public DeviceFaults {
        stateWrites = List.copyOf(stateWrites);
        if (windowReads == null || windowWrites == null) {
            throw DeviceModelException.invalid("window faults must be given (WindowFault.NONE for none)");
        }
        if (corruptImageAtByte < -1) {
            throw DeviceModelException.invalid("corruptImageAtByte is -1 (never) or an offset: " + corruptImageAtByte);
        }
        if (slowQuiesceMs < 0 || slowQuiesceMs > MAX_SLOW_QUIESCE_MS) {
            throw DeviceModelException.invalid("slowQuiesceMs must be between 0 and " + MAX_SLOW_QUIESCE_MS + ": " + slowQuiesceMs);
        }
    }

    public boolean none() {
        return stateWrites.isEmpty() && windowReads.none() && windowWrites.none() && corruptImageAtByte < 0 && slowQuiesceMs == 0;
    }
}
