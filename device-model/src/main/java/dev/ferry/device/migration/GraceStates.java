package dev.ferry.device.migration;

/**
 * The per-device states of the reference flows' grace steps (SPEC §5, F1). A device without NDMA
 * skips the NDMA bit: its grace step merges into the next one.
 */
public final class GraceStates {
    private GraceStates() {
    }

    /** S3 and S4: SAVING|NDMA|RUNNING, or SAVING|RUNNING for a device without NDMA. */
    public static DeviceState saveGrace(boolean ndma) {
        return ndma ? DeviceState.PRE_COPY_NDMA : DeviceState.PRE_COPY;
    }

    /**
     * R3: NDMA|RUNNING, loading the state and waiting for the barrier. A device without NDMA cannot
     * wait running without DMA, so it loads into STOP here and starts at R4 with the others
     * <b>(Ferry)</b>: every device has loaded, and can fail to load, before the source commits.
     */
    public static DeviceState resumeGrace(boolean ndma) {
        return ndma ? DeviceState.RUNNING_NDMA : DeviceState.STOP;
    }
}
