package dev.ferry.device.migration;

/** Why a state write failed; each names the rule that makes it fail. */
public enum TransitionFailure {
    /** D1: not a valid request (5, 6, 7, 13, 14, 15, 16 and above; ERROR can never be requested). */
    INVALID_STATE("D1"),
    /** D3: NDMA requested of a device that does not support it. */
    NDMA_UNSUPPORTED("D3"),
    /** D4: the device is in ERROR; only reset leaves it. */
    IN_ERROR("D4"),
    /** D6: stop-and-copy never goes back to pre-copy. */
    NO_RETURN_TO_PRE_COPY("D6"),
    /** D8: the data written while RESUMING is incomplete, corrupt or incompatible. */
    LOAD_FAILED("D8"),
    /** D11/D12: DMA in flight did not finish in time; the device could not honour NDMA or !RUNNING. */
    QUIESCE_TIMEOUT("D11"),
    /** V2: the current state has no v2 twin (a superfluous NDMA), so the v2 walk cannot start. */
    NO_V2_STATE("V2"),
    /** V2: ERROR, a state the device lacks, or a value of 8 or more was requested. */
    V2_UNSUPPORTED("V2"),
    /** V2: STOP_COPY towards PRE_COPY or PRE_COPY_P2P. */
    V2_NO_PATH("V2"),
    /** The device was removed while the write was waiting. */
    DEVICE_CLOSED("D2"),
    /**
     * D2: the caller was interrupted (a cancelled migration) while the write waited for work in flight
     * to finish; the write was abandoned before anything irreversible and the state is unchanged.
     */
    INTERRUPTED("D2"),
    /** D2: a fault injected into the device ({@code DeviceFaults}) failed the write, state unchanged or ERROR. */
    INJECTED("D2");

    private final String rule;

    TransitionFailure(String rule) {
        this.rule = rule;
    }

    /** The SPEC rule that makes this failure. */
    public String rule() {
        return rule;
    }
}
