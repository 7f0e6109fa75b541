package dev.ferry.device.migration;

/**
 * The v2 migration states (Linux {@code enum vfio_device_mig_state}), each with its v1 twin and the
 * migration flags a device needs to have it (SPEC §3).
 */
public enum MigrationState {
    ERROR(0, DeviceState.ERROR),
    STOP(1, DeviceState.STOP),
    RUNNING(2, DeviceState.RUNNING),
    STOP_COPY(3, DeviceState.STOP_COPY),
    RESUMING(4, DeviceState.RESUMING),
    RUNNING_P2P(5, DeviceState.RUNNING_NDMA),
    PRE_COPY(6, DeviceState.PRE_COPY),
    PRE_COPY_P2P(7, DeviceState.PRE_COPY_NDMA);

    private final int value;
    private final DeviceState v1;

    MigrationState(int value, DeviceState v1) {
        this.value = value;
        this.v1 = v1;
    }

    /** The kernel's numeric value. */
    public int value() {
        return value;
    }

    public DeviceState v1() {
        return v1;
    }

    /** The saving group: never an interior state of a combination transition (V1). */
    public boolean isSaving() {
        return this == STOP_COPY || this == PRE_COPY || this == PRE_COPY_P2P;
    }

    /** Whether a device with these flags has this state; ERROR is never a state one can ask for. */
    public boolean supportedBy(MigrationFlags flags) {
        return switch (this) {
            case ERROR -> false;
            case STOP, RUNNING, STOP_COPY, RESUMING -> true;
            case RUNNING_P2P -> flags.p2p();
            case PRE_COPY -> flags.preCopy();
            case PRE_COPY_P2P -> flags.p2p() && flags.preCopy();
        };
    }

    public static MigrationState ofValue(int value) {
        for (MigrationState state : values()) {
            if (state.value == value) {
                return state;
            }
        }
        throw new IllegalArgumentException("no v2 migration state has the value " + value);
    }
}
