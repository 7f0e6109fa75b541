package dev.ferry.orchestrator.capture;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameType;
import dev.ferry.protocol.PhaseCode;

/** Frames said in a few words, as {@code ferryd inspect} prints them. */
final class Frames {
    private Frames() {
    }

    /** A frame type's name, or its code when it is not one. */
    static String name(int code) {
        FrameType type = FrameType.of(code);
        return type != null ? type.name() : code < 0 ? "a cut header" : String.format("type 0x%02x", code);
    }

    static String describe(Frame frame) {
        if (frame instanceof Frame.Pages pages) {
            return "PAGES iteration " + pages.iteration() + ", " + pages.count() + " pages (" + pages.zeroPages() + " zero)";
        }
        if (frame instanceof Frame.DeviceData data) {
            return "DEVICE_DATA device " + data.device() + " at " + data.offset() + ", " + data.content().readableBytes() + " bytes";
        }
        if (frame instanceof Frame.VmDescription description) {
            return "VM_DESCRIPTION " + description.memoryBytes() + " bytes of memory in " + description.pageSize() + "-byte pages, "
                    + description.dataChannels() + " data channel" + (description.dataChannels() == 1 ? "" : "s");
        }
        if (frame instanceof Frame.Phase phase) {
            PhaseCode code = PhaseCode.of(phase.phase());
            return "PHASE " + (code == null ? String.valueOf(phase.phase()) : code.label()) + " (iteration " + phase.iteration() + ")";
        }
        if (frame instanceof Frame.IterationEnd end) {
            return "ITERATION_END " + end.iteration() + ": " + end.pages() + " pages, " + end.bytes() + " bytes";
        }
        if (frame instanceof Frame.IterationDone done) {
            return "ITERATION_DONE " + done.iteration();
        }
        if (frame instanceof Frame.DataEnd end) {
            return "DATA_END " + end.iteration() + ": " + end.pages() + " pages";
        }
        if (frame instanceof Frame.ChannelEnd end) {
            return "CHANNEL_END " + end.pages() + " pages";
        }
        if (frame instanceof Frame.DeviceEnd end) {
            return "DEVICE_END device " + end.device() + ": " + end.totalBytes() + " bytes";
        }
        if (frame instanceof Frame.DeviceInitial initial) {
            return "DEVICE_INITIAL device " + initial.device() + " round " + initial.generation() + " ends at " + initial.endOffset();
        }
        if (frame instanceof Frame.SwitchoverAck ack) {
            return "SWITCHOVER_ACK " + ack.sequence();
        }
        if (frame instanceof Frame.VmRefused refused) {
            return "VM_REFUSED " + refused.code().label() + ": " + refused.device() + " (" + refused.field() + "): " + refused.reason();
        }
        if (frame instanceof Frame.Prepare prepare) {
            return "PREPARE" + (prepare.verify() ? " with verify" : "");
        }
        if (frame instanceof Frame.Prepared prepared) {
            return "PREPARED after " + prepared.loadMicros() + " us of loading" + (prepared.digest().length > 0 ? ", with a digest" : "");
        }
        if (frame instanceof Frame.Confirm confirm) {
            return "CONFIRM after " + confirm.resumeMicros() + " us of resuming";
        }
        if (frame instanceof Frame.Abort abort) {
            return "ABORT " + abort.code().label() + ": " + abort.message();
        }
        return frame.type().name();
    }
}
