package dev.ferry.device.migration;

/**
 * The groups of one v1 write, in the order a device applies them (SPEC §1, priority order). A write
 * runs only the steps its bit changes call for and stops at the first that fails.
 */
public enum TransitionStep {
    /** 1. NDMA set: stop starting DMA, wait for DMA in flight. */
    NDMA_SET,
    /** 2. !RUNNING: freeze; no DMA, no interrupts, no internal state change. */
    FREEZE,
    /** 3. SAVING|!RUNNING: capture what the internal log has not streamed yet. */
    CAPTURE,
    /** SAVING cleared: end the save session and discard the window (D9). */
    SAVE_END,
    /** 4. RESUMING set: open the window for incoming data (D7). */
    RESUME_OPEN,
    /** 5. RESUMING cleared: load and validate what was written (D8). */
    LOAD,
    /** 6. RUNNING: restart. */
    RESTART,
    /** 7. SAVING|RUNNING: start pre-copy, internal dirty logging on. */
    PRE_COPY_START,
    /** 8. NDMA cleared: start DMA again. */
    NDMA_CLEAR
}
