package dev.ferry.orchestrator.migration;

import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.DeviceKinds;
import dev.ferry.device.memory.PageGeometry;
import java.util.List;
import java.util.Set;

/**
 * F8: before any page or device data moves, the destination checks every device of the VM
 * description against what it hosts: the kind (known to this daemon's device model and among the
 * kinds it was told to host), the version of the kind's data format, and the device's configuration.
 * The first device that does not fit is refused with the field that does not and why; nothing is
 * allocated on either side.
 */
final class Compatibility {
    /** A device the destination cannot host: which one, which field of its description, and why. */
    record Refusal(String device, String field, String reason) {
        String describe() {
            return "device " + device + " (" + field + "): " + reason;
        }
    }

    private final DeviceKinds kinds;
    private final Set<String> hostedKinds;

    /**
     * @param kinds       the kinds this daemon knows (built-in and from its device jars)
     * @param hostedKinds the kinds this daemon hosts and takes in incoming migrations
     */
    Compatibility(DeviceKinds kinds, Set<String> hostedKinds) {
        this.kinds = kinds;
        this.hostedKinds = Set.copyOf(hostedKinds);
    }

    DeviceKinds kinds() {
        return kinds;
    }

    /** The data format version this daemon writes and reads for a kind: the kind's own (its provider's). */
    static int formatVersion(DeviceKind kind) {
        return kind.formatVersion();
    }

    /** The first device of the description this daemon cannot host, or null when it can host them all. */
    Refusal check(List<VmManifest.DeviceEntry> devices) {
        for (VmManifest.DeviceEntry entry : devices) {
            Refusal refusal = check(entry);
            if (refusal != null) {
                return refusal;
            }
        }
        return null;
    }

    private Refusal check(VmManifest.DeviceEntry entry) {
        DeviceKind kind;
        try {
            kind = kinds.of(entry.kind());
        } catch (RuntimeException e) {
            return new Refusal(entry.id(), "kind", "this daemon does not know the kind '" + entry.kind() + "' (it knows "
                    + kinds.known() + ")");
        }
        if (!hostedKinds.contains(kind.label())) {
            return new Refusal(entry.id(), "kind", "this daemon hosts only " + String.join(", ", hostedKinds.stream().sorted().toList())
                    + " devices (--device-kinds), not " + kind.label());
        }
        int version = formatVersion(kind);
        if (entry.formatVersion() != version) {
            return new Refusal(entry.id(), "formatVersion", "this daemon reads " + kind.label() + " data format version " + version
                    + " only, the source writes version " + entry.formatVersion());
        }
        if (entry.ndma() && !kind.ndmaCapable()) {
            return new Refusal(entry.id(), "ndma", "a " + kind.label() + " device here cannot support NDMA");
        }
        if (entry.pri() && !entry.ndma()) {
            return new Refusal(entry.id(), "pri", "page requests need NDMA (M4)");
        }
        if (entry.memoryBytes() <= 0 || entry.memoryBytes() > DeviceConfig.MAX_MEMORY_BYTES
                || entry.memoryBytes() % PageGeometry.PAGE_SIZE != 0) {
            return new Refusal(entry.id(), "memoryBytes", "this daemon hosts " + kind.label() + " memory of a multiple of "
                    + PageGeometry.PAGE_SIZE + " bytes up to " + DeviceConfig.MAX_MEMORY_BYTES + ", not " + entry.memoryBytes());
        }
        if (entry.reinitMs() < 0 || entry.reinitMs() > DeviceConfig.MAX_REINIT_MS || entry.reinitMs() > 0 && !kind.reinitialises()) {
            return new Refusal(entry.id(), "reinitMs", "a " + kind.label() + " here cannot re-partition every " + entry.reinitMs() + " ms");
        }
        return null;
    }
}
