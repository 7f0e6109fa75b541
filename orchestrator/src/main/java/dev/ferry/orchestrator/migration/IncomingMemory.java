package dev.ferry.orchestrator.migration;

import dev.ferry.device.memory.DirtyBitmap;
import dev.ferry.device.memory.GuestMemory;
import dev.ferry.orchestrator.metrics.FerryMetrics;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameHeader;
import dev.ferry.protocol.FrameType;
import dev.ferry.protocol.PageRouting;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.net.FrameChannel;
import dev.ferry.protocol.net.FrameHandler;
import dev.ferry.protocol.transfer.PagePlacement;
import dev.ferry.protocol.transfer.PageReceiver;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The destination's guest memory as pages arrive on the session's data channels: each page goes to
 * its place on the channel's event loop as its frame arrives (checked whole first), every page
 * received is noted, and each channel's iteration ends are handed to the {@link IterationBarrier}.
 *
 * <p>F11: a VM is built only from a complete stream. {@link #missingPages} says how many pages have
 * never arrived, as data or as a zero page; PREPARE with any missing is refused. That also keeps
 * memory reused from the pool, which may hold an earlier VM's bytes until overwritten, from ever
 * being seen: every page of it is overwritten before the VM can run or be read.
 */
final class IncomingMemory {
    /** How long closing waits for a data channel; closing does not depend on the peer. */
    private static final long CLOSE_WAIT_MILLIS = 5_000;

    private final GuestMemory memory;
    private final int channels;
    private final Migration migration;
    private final FerryMetrics metrics;
    private final Supplier<String> sourcePhase;
    private final PeerReplies replies;
    private final IncomingDevices devices;
    private final IterationBarrier barrier = new IterationBarrier();
    private final DirtyBitmap received;
    /** Pages whose latest copy arrived torn: they must arrive again, intact, before the VM is built (F11). */
    private final DirtyBitmap torn;
    private final Map<Integer, PageReceiver> receivers = new ConcurrentHashMap<>();
    private final List<FrameChannel> open = new CopyOnWriteArrayList<>();
    /** Completes when the session ends from elsewhere (the control channel closed, an ABORT): waits here end too. */
    private final java.util.concurrent.CompletableFuture<Void> abandoned = new java.util.concurrent.CompletableFuture<>();
    private volatile boolean discarded;

    /** @param devices where device data that arrives on the data channels goes (F10) */
    IncomingMemory(GuestMemory memory, int channels, Migration migration, FerryMetrics metrics, Supplier<String> sourcePhase,
                   PeerReplies replies, IncomingDevices devices) {
        this.memory = memory;
        this.channels = channels;
        this.migration = migration;
        this.metrics = metrics;
        this.sourcePhase = sourcePhase;
        this.replies = replies;
        this.devices = devices;
        this.received = new DirtyBitmap(memory.pages());
        this.received.start();
        this.torn = new DirtyBitmap(memory.pages());
        this.torn.start();
    }

    IterationBarrier barrier() {
        return barrier;
    }

    int channels() {
        return channels;
    }

    /** A data channel of the session arrives; on its event loop, before it is accepted. */
    FrameHandler accept(FrameChannel channel) throws ProtocolException {
        if (channel.index() >= channels) {
            throw new ProtocolException(ErrorCode.BAD_ROLE, "data channel " + channel.index() + " of a session with " + channels);
        }
        // Zero pages of the frame being applied; only this channel's event loop touches it.
        long[] zeroPages = new long[1];
        int index = channel.index();
        PageReceiver receiver = new PageReceiver(new Frame.Pages.PageVisitor() {
            @Override
            public void zero(long page) {
                if (!discarded) {
                    memory.loadZeroPage(page);
                    arrived(page);
                    zeroPages[0]++;
                }
            }

            @Override
            public void intact(long page, ByteBuffer data) {
                if (!discarded) {
                    if (data != null) {
                        memory.loadPage(page, data);
                    }
                    arrived(page);
                }
            }

            @Override
            public void zeroStretch(long first, long count) {
                if (!discarded) {
                    memory.store().zeroPages(first, count);
                    received.markRange(first, count);
                    // Word by word over the stretch only: a scan for torn pages would run to the end of memory for
                    // every stretch, and a 64 GiB VM sends a quarter of a million of them on each of two channels.
                    torn.clearRange(first, count);
                    zeroPages[0] += count;
                }
            }

            @Override
            public void torn(long page) {
                // The source changed the page while sending it: its dirty log has it, and a later pass
                // sends it again. Until then it counts as not arrived (F11).
                if (!discarded) {
                    torn.mark(page);
                    migration.tornPage();
                }
            }
        }, (iteration, pages) -> barrier.ended(index, iteration, pages));
        if (receivers.putIfAbsent(index, receiver) != null) {
            throw new ProtocolException(ErrorCode.DUPLICATE_CHANNEL, "data channel " + index + " is open already");
        }
        PageRouting routing = new PageRouting(memory.pages(), channels, index);
        channel.setPageRouting(routing);
        // Page bytes go straight from the socket into guest memory; pages not this channel's get no
        // place, so their frame is read whole and the session's rules refuse it.
        channel.setPagePlacement(new PagePlacement() {
            @Override
            public ByteBuffer target(long first, int count) {
                if (discarded || first < 0 || first + count > memory.pages()) {
                    return null;
                }
                for (long page = first; page < first + count; page++) {
                    if (!routing.accepts(page)) {
                        return null;
                    }
                }
                return memory.store().placementView(first, count);
            }

            @Override
            public void placed(long first, int count) {
                memory.store().placed(first, count);
            }
        });
        open.add(channel);
        return new FrameHandler() {
            @Override
            public void frameReceived(FrameChannel ch, Frame frame) {
                if (frame instanceof Frame.Pages pages) {
                    int count = pages.count();
                    long bytes = pages.wireBytes();
                    receiver.frameReceived(ch, frame);
                    migration.pages(count, zeroPages[0]);
                    zeroPages[0] = 0;
                    migration.wire(bytes);
                    metrics.received(sourcePhase.get(), "memory", bytes);
                    return;
                }
                if (frame instanceof Frame.ZeroPages zero) {
                    receiver.frameReceived(ch, frame);
                    migration.pages(zero.pages(), zeroPages[0]);
                    zeroPages[0] = 0;
                    migration.wire(FrameHeader.BYTES + FrameType.ZERO_PAGES.maxPayload());
                    metrics.received(sourcePhase.get(), "memory", FrameHeader.BYTES + FrameType.ZERO_PAGES.maxPayload());
                    return;
                }
                if (frame instanceof Frame.DeviceData chunk) {
                    devices.chunk(ch, chunk);
                    return;
                }
                if (frame instanceof Frame.Abort abort) {
                    replies.add(abort);
                }
                receiver.frameReceived(ch, frame);
            }

            @Override
            public void channelClosed(FrameChannel ch, ProtocolException cause) {
                receiver.channelClosed(ch, cause);
                barrier.broken();
                if (cause != null) {
                    replies.add(new PeerReplies.Closed(cause, false));
                }
            }
        };
    }

    private void arrived(long page) {
        received.mark(page);
        if (torn.isDirty(page)) {
            torn.testAndClear(page);
        }
    }

    /** Pages that never arrived, as data or as a zero page (F11). */
    long missingPages() {
        return memory.pages() - received.count();
    }

    /**
     * Pages whose latest copy arrived torn and that no later pass sent again: a change on the source
     * that its dirty log did not explain, or damage on the way. A VM is not built with them (F11).
     */
    long tornPages() {
        return torn.count();
    }

    /** The first page still torn, or -1. */
    long firstTornPage() {
        return torn.nextDirty(0);
    }

    /** The first page that never arrived, or -1. */
    long firstMissingPage() {
        for (long page = 0; page < memory.pages(); page++) {
            if (!received.isDirty(page)) {
                return page;
            }
        }
        return -1;
    }

    /**
     * The session ended from elsewhere (the control channel closed, or the source aborted): every wait
     * on the data channels ends now rather than when they go silent, and the flow finds the reason in
     * its replies.
     */
    void abandon() {
        abandoned.complete(null);
        barrier.broken();
    }

    /**
     * Waits until every data channel has arrived and sent CHANNEL_END (PREPARE may overtake data on
     * other connections). Ends early, with the failure, when a channel breaks or the session is
     * abandoned.
     */
    void awaitChannelsEnded() throws MigrationFailure, InterruptedException {
        if (receivers.size() != channels) {
            throw new MigrationFailure(MigrationFailure.PROTOCOL_ERROR, receivers.size() + " of " + channels
                    + " data channels arrived before PREPARE");
        }
        java.util.concurrent.CompletableFuture<?>[] ends = receivers.values().stream().map(PageReceiver::ended)
                .toArray(java.util.concurrent.CompletableFuture<?>[]::new);
        java.util.concurrent.CompletableFuture<Void> all = java.util.concurrent.CompletableFuture.allOf(ends);
        try {
            java.util.concurrent.CompletableFuture.anyOf(all, abandoned).get();
        } catch (ExecutionException e) {
            throw e.getCause() instanceof ProtocolException p ? MigrationFailure.of(p, "data channel")
                    : new MigrationFailure(MigrationFailure.CONNECTION_LOST, "data channel: "
                    + ProtocolException.describeBroken(e.getCause()));
        }
        if (!all.isDone()) {
            MigrationFailure ended = replies.ended();
            throw ended != null ? ended : new MigrationFailure(MigrationFailure.CONNECTION_LOST, "the session ended");
        }
    }

    /**
     * Stops applying pages and closes every data channel at once; returns when they are closed, after
     * which nothing writes into the memory any more.
     */
    void discard() {
        discarded = true;
        closeAll();
    }

    /** Closes every data channel at once (they are done, or the migration is). */
    void closeAll() {
        for (FrameChannel channel : open) {
            channel.closeNow().awaitUninterruptibly(CLOSE_WAIT_MILLIS, TimeUnit.MILLISECONDS);
        }
    }
}
