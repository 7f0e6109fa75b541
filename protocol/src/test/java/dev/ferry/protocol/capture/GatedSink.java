package dev.ferry.protocol.capture;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.util.concurrent.CountDownLatch;

/**
 * A capture's sink that takes nothing until the test opens it: a writer thread waits in its first
 * write, as it would on a disk that stalls, and then everything goes to the channel below.
 */
public final class GatedSink implements WritableByteChannel {
    private final WritableByteChannel target;
    private final CountDownLatch gate;

    public GatedSink(WritableByteChannel target, CountDownLatch gate) {
        this.target = target;
        this.gate = gate;
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        try {
            gate.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while the sink was closed");
        }
        return target.write(src);
    }

    @Override
    public boolean isOpen() {
        return target.isOpen();
    }

    @Override
    public void close() throws IOException {
        target.close();
    }
}
