package dev.ferry.protocol;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import dev.ferry.protocol.compression.FrameCompressor;
import dev.ferry.protocol.compression.PageCodec;
import java.nio.ByteBuffer;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/** One frame of every type, and helpers to turn frames into bytes and compare them. */
final class SampleFrames {
    private SampleFrames() {
    }

    static List<Frame> all(SplittableRandom random) {
        List<Frame> frames = new ArrayList<>();
        frames.add(new Frame.Hello(Frame.MAGIC, 1, 1, ChannelRole.DATA.code(), 3, SessionId.random(), bytes(random, 32)));
        frames.add(new Frame.Challenge(1, bytes(random, 32), bytes(random, 32)));
        frames.add(new Frame.Auth(bytes(random, 32)));
        frames.add(new Frame.Accept(FrameType.MAX_PAYLOAD, 10_000));
        frames.add(new Frame.Refuse(ErrorCode.AUTH_FAILED, "wrong token"));
        frames.add(new Frame.VmDescription(1L << 30, 4096, 4, "{\"id\":\"vm1\"}".getBytes()));
        frames.add(new Frame.VmAccepted());
        frames.add(new Frame.DeviceData(2, 12345, Unpooled.wrappedBuffer(bytes(random, 1000))));
        frames.add(new Frame.DeviceEnd(2, 13345));
        frames.add(new Frame.Phase(PhaseCode.PRECOPY.code(), 3));
        frames.add(new Frame.IterationEnd(3, 1000, 4_100_000));
        frames.add(new Frame.IterationDone(3));
        frames.add(new Frame.IterationDone(4, 2300, List.of(new Frame.IterationDone.DeviceLoad(1 << 20, 1500),
                new Frame.IterationDone.DeviceLoad(0, 0))));
        frames.add(new Frame.DeviceInitial(1, 2, 64L << 20));
        frames.add(new Frame.SwitchoverAck(3));
        frames.add(new Frame.VmRefused(ErrorCode.INCOMPATIBLE_DEVICE, "gpu0", "formatVersion", "this daemon reads gpu data format 1 only"));
        frames.add(new Frame.Prepare(true));
        frames.add(new Frame.Prepare(false));
        frames.add(new Frame.Prepared(bytes(random, 32), 1500));
        frames.add(new Frame.Prepared(new byte[0], 1500, List.of(10L, 20L, 30L)));
        frames.add(new Frame.Commit());
        frames.add(new Frame.Confirm(2500));
        frames.add(new Frame.Confirm(2500, List.of(40L, 50L)));
        frames.add(new Frame.Abort(ErrorCode.CANCELLED, "cancelled by the operator — ünïcödé"));
        frames.add(new Frame.Keepalive(random.nextLong()));
        frames.add(new Frame.KeepaliveAck(random.nextLong()));
        frames.add(pages(random, 5, 0, 3));
        frames.add(compressedPages(random, 5, 64, 5, PageCodec.LZ4));
        frames.add(compressedPages(random, 6, 128, 8, PageCodec.ZSTD));
        frames.add(new Frame.ZeroPages(3, 128, 1 << 20, 1 << 19));
        frames.add(new Frame.DataEnd(5, 3));
        frames.add(new Frame.ChannelEnd(3));
        return frames;
    }

    /** A PAGES frame of {@code count} pages starting at {@code first}, every third one zero, the rest random. */
    static Frame.Pages pages(SplittableRandom random, int iteration, long first, int count) {
        PagesBuilder builder = new PagesBuilder(ByteBufAllocator.DEFAULT, iteration);
        for (int i = 0; i < count; i++) {
            if (i % 3 == 1) {
                builder.addZero(first + i);
            } else {
                ByteBuffer page = ByteBuffer.allocateDirect(4096);
                page.put(bytes(random, 4096)).flip();
                if (i % 2 == 0) {
                    builder.addPage(first + i, page);
                } else {
                    builder.addCopy(first + i, page);
                }
            }
        }
        return builder.build();
    }

    /** What a compressed frame decodes to: the PAGES frame it was made from. */
    private static final Map<Frame, String> DECODED = Collections.synchronizedMap(new IdentityHashMap<>());

    /**
     * A COMPRESSED_PAGES frame of {@code count} pages from {@code first}, every third one zero, the rest text-like
     * (words from a small vocabulary, so that they compress).
     */
    static Frame.CompressedPages compressedPages(SplittableRandom random, int iteration, long first, int count, PageCodec codec) {
        PagesBuilder builder = new PagesBuilder(ByteBufAllocator.DEFAULT, iteration);
        String[] words = {"ferry ", "page ", "dirty ", "channel ", "device ", "switchover ", "4096 ", "\n"};
        for (int i = 0; i < count; i++) {
            if (i % 3 == 1) {
                builder.addZero(first + i);
                continue;
            }
            StringBuilder text = new StringBuilder();
            while (text.length() < 4096) {
                text.append(words[random.nextInt(words.length)]);
            }
            builder.addCopy(first + i, ByteBuffer.wrap(text.substring(0, 4096).getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
        }
        Frame.Pages pages = builder.build();
        String description = describe(pages);
        try (FrameCompressor compressor = new FrameCompressor(codec, ByteBufAllocator.DEFAULT)) {
            Frame compressed = compressor.compress(pages, ByteBufAllocator.DEFAULT);
            if (!(compressed instanceof Frame.CompressedPages frame)) {
                throw new AssertionError("text-like pages did not compress");
            }
            DECODED.put(frame, description);
            return frame;
        }
    }

    static byte[] bytes(SplittableRandom random, int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    /** Encodes frames through a fresh encoder (sequence from 0) and returns the bytes. */
    static byte[] encode(List<Frame> frames) {
        EmbeddedChannel channel = new EmbeddedChannel(new FrameEncoder());
        for (Frame frame : frames) {
            if (frame instanceof io.netty.buffer.ByteBufHolder holder) {
                holder.retain();
            }
            channel.writeOutbound(frame);
        }
        ByteBuf all = Unpooled.buffer();
        ByteBuf part;
        while ((part = channel.readOutbound()) != null) {
            all.writeBytes(part);
            part.release();
        }
        channel.finishAndReleaseAll();
        byte[] out = new byte[all.readableBytes()];
        all.readBytes(out);
        all.release();
        return out;
    }

    /** A comparable description of a frame, contents included. */
    static String describe(Frame frame) {
        String decoded = DECODED.get(frame);
        if (decoded != null) {
            return decoded;
        }
        if (frame instanceof Frame.Pages pages) {
            StringBuilder sb = new StringBuilder("Pages " + pages.iteration() + " " + pages.count());
            pages.forEach(new Frame.Pages.PageVisitor() {
                @Override
                public void zero(long index) {
                    sb.append(' ').append(index).append(":zero");
                }

                @Override
                public void intact(long index, ByteBuffer data) {
                    sb.append(' ').append(index).append(':').append(data.hashCode());
                }

                @Override
                public void torn(long index) {
                    sb.append(' ').append(index).append(":torn");
                }
            });
            return sb.toString();
        }
        if (frame instanceof Frame.DeviceData data) {
            return "DeviceData " + data.device() + " " + data.offset() + " "
                    + Arrays.hashCode(io.netty.buffer.ByteBufUtil.getBytes(data.content()));
        }
        if (frame instanceof Frame.Hello h) {
            return "Hello " + h.magic() + " " + h.minVersion() + " " + h.maxVersion() + " " + h.role() + " "
                    + h.channelIndex() + " " + h.session() + " " + Arrays.toString(h.nonce());
        }
        if (frame instanceof Frame.Challenge c) {
            return "Challenge " + c.version() + " " + Arrays.toString(c.nonce()) + Arrays.toString(c.proof());
        }
        if (frame instanceof Frame.Auth a) {
            return "Auth " + Arrays.toString(a.proof());
        }
        if (frame instanceof Frame.VmDescription d) {
            return "VmDescription " + d.memoryBytes() + " " + d.pageSize() + " " + d.dataChannels() + " " + new String(d.description());
        }
        if (frame instanceof Frame.Prepared p) {
            return "Prepared " + Arrays.toString(p.digest()) + " " + p.loadMicros();
        }
        return frame.toString();
    }

    static void release(Object frame) {
        io.netty.util.ReferenceCountUtil.release(frame);
    }
}
