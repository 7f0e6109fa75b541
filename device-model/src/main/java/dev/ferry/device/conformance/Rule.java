package dev.ferry.device.conformance;

/** The rules of SPEC §1–§3 and §6 (W7–W9) that a device kind must follow, each as the kit checks it. */
public enum Rule {
    D1("valid requests: 0–15 without SAVING+RESUMING or RESUMING+RUNNING; others fail, state unchanged"),
    D2("a write ends in exactly one of: the requested state, the previous state, ERROR"),
    D3("without NDMA support any request with NDMA fails, state unchanged"),
    D4("in ERROR every write fails and the state stays ERROR"),
    D5("reset from every state, ERROR included: window discarded, RUNNING"),
    D6("stop-and-copy never goes back to pre-copy"),
    D7("entering RESUMING succeeds from any non-ERROR state"),
    D8("leaving RESUMING loads what was written; corrupt, truncated, wrong-kind or wrong-version data fails into ERROR"),
    D9("clearing SAVING ends the save session and discards the window"),
    D10("the priority order is observable: groups in order, no DMA between RUNNING and NDMA, DMA quiesced before capture"),
    D11("NDMA|RUNNING: no DMA starts or is in flight; MMIO is still accepted"),
    D12("!RUNNING: no DMA, no interrupts, no state change; MMIO counted in mmioWhileStopped"),
    D13("ERROR behaves as NDMA: no DMA, no interrupts"),
    W1("pendingBytes is what can be read now; 0 in stop-and-copy is the end of the stream"),
    W2("everything read from SAVING to the end is the data; switching to stop-and-copy mid-record carries forward"),
    W3("without internal logging: nothing in pre-copy, everything in stop-and-copy"),
    W4("with internal logging: bulk in pre-copy, then only what changed; initialBytes and dirtyBytes"),
    W5("resuming accepts the stream in any chunking"),
    W6("reading outside SAVING or writing outside RESUMING fails and changes nothing"),
    W7("data is processed as it arrives: loadedBytes at record boundaries; bad data fails the write that carries it"),
    W8("re-initialisation: initialBytes grows again and the new initial data streams like the first"),
    W9("stopCopyBytes predicts exactly what stop-and-copy streams, in any state of a save session"),
    V1("a v2 request walks the kernel's next-state path, never through a saving state"),
    V2("STOP_COPY towards pre-copy, ERROR, a missing state or a value of 8 or more fail at once, unchanged"),
    V3("when an arc fails the device stays where the walk stopped");

    private final String summary;

    Rule(String summary) {
        this.summary = summary;
    }

    /** What the rule asks, in a line. */
    public String summary() {
        return summary;
    }
}
