package dev.ferry.orchestrator.api;

import dev.ferry.device.DeviceFaults;
import dev.ferry.device.DeviceModelException;
import dev.ferry.device.migration.TransitionStep;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** A device's injected faults between their JSON shape ({@link Requests.Faults}) and the device model's {@link DeviceFaults}. */
public final class FaultsJson {
    /** The priority steps' names in JSON: {@code ndma_set}, {@code freeze}, ... */
    public static final List<String> STEPS = java.util.Arrays.stream(TransitionStep.values())
            .map(step -> step.name().toLowerCase(Locale.ROOT)).toList();

    private FaultsJson() {
    }

    /**
     * The device model's faults for a request's, {@link DeviceFaults#NONE} for none.
     *
     * @throws DeviceModelException {@code invalid_config} naming the field that is wrong
     */
    public static DeviceFaults toModel(Requests.Faults json) {
        if (json == null) {
            return DeviceFaults.NONE;
        }
        List<DeviceFaults.StateWriteFault> writes = new ArrayList<>();
        List<Requests.StateWriteFault> given = json.stateWrites() == null ? List.of() : json.stateWrites();
        for (int i = 0; i < given.size(); i++) {
            Requests.StateWriteFault fault = given.get(i);
            String field = "faults.stateWrites[" + i + "]";
            if (fault == null || fault.step() == null || !STEPS.contains(fault.step())) {
                throw DeviceModelException.invalid(field + ".step must be one of " + String.join(", ", STEPS));
            }
            String result = fault.result() == null ? "error" : fault.result();
            if (!result.equals("error") && !result.equals("refused")) {
                throw DeviceModelException.invalid(field + ".result must be error or refused, not " + result);
            }
            writes.add(new DeviceFaults.StateWriteFault(TransitionStep.valueOf(fault.step().toUpperCase(Locale.ROOT)),
                    fault.nth() == null ? 1 : fault.nth(), result.equals("error")));
        }
        return new DeviceFaults(writes, window(json.windowReads()), window(json.windowWrites()),
                json.corruptImageAtByte() == null ? -1 : json.corruptImageAtByte(), json.slowQuiesceMs() == null ? 0 : json.slowQuiesceMs());
    }

    private static DeviceFaults.WindowFault window(Requests.WindowFault json) {
        if (json == null) {
            return DeviceFaults.WindowFault.NONE;
        }
        return new DeviceFaults.WindowFault(json.maxBytes() == null ? 0 : json.maxBytes(),
                json.failAfterBytes() == null ? -1 : json.failAfterBytes());
    }

    /** The JSON shape of a device's faults, null for none: the device's view and the VM description show them so. */
    public static Requests.Faults of(DeviceFaults faults) {
        if (faults.none()) {
            return null;
        }
        List<Requests.StateWriteFault> writes = faults.stateWrites().stream().map(f -> new Requests.StateWriteFault(
                f.step().name().toLowerCase(Locale.ROOT), f.nth(), f.intoError() ? "error" : "refused")).toList();
        return new Requests.Faults(writes, window(faults.windowReads()), window(faults.windowWrites()), faults.corruptImageAtByte(),
                faults.slowQuiesceMs());
    }

    private static Requests.WindowFault window(DeviceFaults.WindowFault fault) {
        return new Requests.WindowFault(fault.maxBytes(), fault.failAfterBytes());
    }
}
