package dev.ferry.protocol.net;

import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.PageRouting;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.SessionId;
import dev.ferry.protocol.transfer.PageReceiver;
import io.netty.util.ReferenceCountUtil;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A destination for protocol tests: a control channel's VM_DESCRIPTION sizes the session's memory
 * (a direct buffer) and is answered with VM_ACCEPTED; data channels write their pages into it.
 */
final class TestAcceptor implements SessionAcceptor {
    final AtomicInteger calls = new AtomicInteger();
    private final java.util.function.LongFunction<ByteBuffer> memory;

    /** Each session's memory is a new direct buffer of the described size. */
    TestAcceptor() {
        this(bytes -> ByteBuffer.allocateDirect((int) bytes));
    }

    /** Each session's memory comes from {@code memory}, given the described size. */
    TestAcceptor(java.util.function.LongFunction<ByteBuffer> memory) {
        this.memory = memory;
    }
    final Map<SessionId, Session> sessions = new ConcurrentHashMap<>();

    static final class Session {
        final FrameChannel control;
        final BlockingQueue<Frame> frames = new LinkedBlockingQueue<>();
        final List<PageReceiver> receivers = new CopyOnWriteArrayList<>();
        final List<FrameChannel> dataChannels = new CopyOnWriteArrayList<>();
        volatile ByteBuffer memory;
        volatile int channels;

        Session(FrameChannel control) {
            this.control = control;
        }
    }

    @Override
    public FrameHandler acceptControl(FrameChannel channel) throws ProtocolException {
        calls.incrementAndGet();
        Session session = new Session(channel);
        if (sessions.putIfAbsent(channel.session(), session) != null) {
            throw new ProtocolException(ErrorCode.DUPLICATE_CHANNEL, "session " + channel.session() + " has a control channel");
        }
        return new FrameHandler() {
            @Override
            public void frameReceived(FrameChannel ch, Frame frame) {
                if (frame instanceof Frame.VmDescription description) {
                    session.memory = memory.apply(description.memoryBytes());
                    session.channels = description.dataChannels();
                    ch.send(new Frame.VmAccepted());
                }
                if (frame instanceof io.netty.buffer.ByteBufHolder) {
                    ReferenceCountUtil.release(frame);
                    return;
                }
                session.frames.add(frame);
            }
        };
    }

    @Override
    public FrameHandler acceptData(FrameChannel channel) throws ProtocolException {
        calls.incrementAndGet();
        Session session = sessions.get(channel.session());
        if (session == null || session.memory == null) {
            throw new ProtocolException(ErrorCode.UNKNOWN_SESSION, "no described session " + channel.session());
        }
        ByteBuffer memory = session.memory;
        channel.setPageRouting(new PageRouting(memory.capacity() / 4096, session.channels, channel.index()));
        PageReceiver receiver = new PageReceiver((index, data) -> {
            ByteBuffer target = memory.slice((int) index * 4096, 4096);
            if (data == null) {
                for (int i = 0; i < 4096; i += 8) {
                    target.putLong(i, 0);
                }
            } else {
                target.put(data);
            }
        });
        session.receivers.add(receiver);
        session.dataChannels.add(channel);
        return receiver;
    }
}
