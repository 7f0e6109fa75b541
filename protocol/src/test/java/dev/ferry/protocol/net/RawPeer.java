package dev.ferry.protocol.net;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameDecoder;
import dev.ferry.protocol.FrameEncoder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;

/**
 * A scripted peer over a plain socket: writes whatever frames or bytes a test wants, in order, and
 * reads the server's frames. Reads block for at most ten seconds.
 */
final class RawPeer implements AutoCloseable {
    private final Socket socket;
    private final OutputStream out;
    private final InputStream in;
    private final EmbeddedChannel encoder = new EmbeddedChannel(new FrameEncoder());
    private final EmbeddedChannel decoder = new EmbeddedChannel(new FrameDecoder());

    RawPeer(InetSocketAddress address) throws IOException {
        socket = new Socket(address.getAddress(), address.getPort());
        socket.setSoTimeout(10_000);
        out = socket.getOutputStream();
        in = socket.getInputStream();
    }

    void send(Frame frame) throws IOException {
        encoder.writeOutbound(frame);
        ByteBuf bytes;
        while ((bytes = encoder.readOutbound()) != null) {
            byte[] array = new byte[bytes.readableBytes()];
            bytes.readBytes(array);
            bytes.release();
            out.write(array);
        }
        out.flush();
    }

    void sendBytes(byte[] bytes) throws IOException {
        out.write(bytes);
        out.flush();
    }

    /** The next frame from the server, or {@code null} when it closed the connection. */
    Frame read() throws IOException {
        while (true) {
            Object decoded = decoder.readInbound();
            if (decoded != null) {
                return (Frame) decoded;
            }
            byte[] chunk = new byte[4096];
            int n = in.read(chunk);
            if (n < 0) {
                return null;
            }
            decoder.writeInbound(Unpooled.wrappedBuffer(chunk, 0, n));
        }
    }

    /** Reads frames until one of {@code type} arrives, releasing the rest; {@code null} at end of stream. */
    <T extends Frame> T readUntil(Class<T> type) throws IOException {
        while (true) {
            Frame frame = read();
            if (frame == null || type.isInstance(frame)) {
                return type.cast(frame);
            }
            ReferenceCountUtil.release(frame);
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
        encoder.finishAndReleaseAll();
        decoder.finishAndReleaseAll();
    }
}
