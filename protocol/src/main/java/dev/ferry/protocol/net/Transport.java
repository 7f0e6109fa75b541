package dev.ferry.protocol.net;

import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;

/**
 * The socket transport: native epoll on Linux when its library loads, NIO otherwise. Set the system
 * property {@code ferry.transport=nio} to force NIO.
 */
public final class Transport {
    private static final boolean EPOLL = !"nio".equals(System.getProperty("ferry.transport")) && Epoll.isAvailable();

    private Transport() {
    }

    /**
     * The buffers of every migration channel, the source's device data chunks and both sides' receive
     * buffers among them: pooled, so that a buffer of a frame's size is carved from memory already held.
     * Netty 4.2's default allocator pools buffers of up to 64 KiB only and takes each larger one fresh
     * from {@code allocateDirect}, which zeroes it and faults its pages in; a DEVICE_DATA chunk and the
     * read that receives it are 256 KiB. In the bench's device-channels run, A/B in the same hour, four
     * 256 MiB GPUs moved 910 and 982 MiB/s over one channel with the default allocator, 1235 and 1329
     * MiB/s with this one. A pooled buffer is not zeroed, so only the bytes a buffer's writer put in it
     * are ever read or sent (Netty's indexes), as for any pooled buffer. The pool keeps some chunks of
     * 4 MiB while idle, in up to two arenas per core (24-28 MiB on the 2-core machine after device-heavy
     * migrations): the daemon's memory budget keeps a quarter of the direct-memory limit, at most 256 MiB,
     * for network buffers.
     */
    private static final PooledByteBufAllocator ALLOCATOR = new PooledByteBufAllocator(true);

    /** The allocator of every migration channel, the same for the server's and the client's. */
    public static PooledByteBufAllocator allocator() {
        return ALLOCATOR;
    }

    public static String name() {
        return EPOLL ? "epoll" : "nio";
    }

    /** An event loop group of daemon threads named after {@code name}. */
    public static EventLoopGroup newGroup(int threads, String name) {
        IoHandlerFactory factory = EPOLL ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
        return new MultiThreadIoEventLoopGroup(threads, new DefaultThreadFactory(name, true), factory);
    }

    public static Class<? extends ServerChannel> serverChannel() {
        return EPOLL ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
    }

    public static Class<? extends Channel> channel() {
        return EPOLL ? EpollSocketChannel.class : NioSocketChannel.class;
    }
}
