package dev.ferry.protocol.capture;

import dev.ferry.protocol.FrameType;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;

/** What tests do to capture files: find a frame, damage a byte. */
public final class TestCaptures {
    private TestCaptures() {
    }

    /** The first frame of a type in a capture. */
    public static CaptureRecord.FrameRecord first(Path file, FrameType type) throws IOException, CaptureFormatException {
        try (CaptureReader reader = CaptureReader.open(file)) {
            for (CaptureRecord record = reader.next(); record != null; record = reader.next()) {
                if (record instanceof CaptureRecord.FrameRecord frame && frame.typeCode() == type.code()) {
                    return frame;
                }
            }
        }
        throw new AssertionError("no " + type + " frame in " + file);
    }

    /** Flips one bit of the byte {@code into} bytes into the payload of {@code frame}, in the file. */
    public static void damage(Path file, CaptureRecord.FrameRecord frame, int into) throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            long at = frame.frameOffset() + 16 + into;
            raf.seek(at);
            int b = raf.read();
            raf.seek(at);
            raf.write(b ^ 0x10);
        }
    }
}
