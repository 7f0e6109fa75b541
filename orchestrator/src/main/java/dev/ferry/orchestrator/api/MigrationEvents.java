package dev.ferry.orchestrator.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import dev.ferry.orchestrator.migration.Migration;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.LastHttpContent;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Consumer;

/**
 * The server-sent event streams of migrations, with ids that a reconnecting client can resume from.
 *
 * <p>Each migration that has had a stream gets one {@link Log}: subscribed to the migration until it
 * ends, it numbers every event (1, 2, ...; one sequence per migration, shared by all its streams),
 * keeps the last {@value #KEPT} and writes each to every open stream. A stream opened with
 * {@code Last-Event-ID: N} of this migration gets the kept events after N, then the live ones: no
 * replay from the start and nothing between lost, as long as N is among the last {@value #KEPT} (about
 * 16 s of progress events) and the migration has not ended; otherwise it gets the migration's current
 * state as a new event, or the end event once it ended (every event carries the whole state, so that
 * is all a client needs). A stream opened after the client saw
 * the end (its id is the end's or later) is answered 204, which tells a browser's EventSource to stop
 * reconnecting. Every stream starts with {@code retry: 1000}.
 */
final class MigrationEvents {
    /** Events kept per migration for streams that resume. */
    static final int KEPT = 64;
    /** How long a client waits before it reconnects, in ms (the SSE {@code retry:} field). */
    static final int RETRY_MILLIS = 1000;

    // Weak keys: a log lives as long as its migration is in the manager's history, and holds no
    // reference to it (the migration holds the log, as a subscriber, only until it ends).
    private final Map<Migration, Log> logs = Collections.synchronizedMap(new WeakHashMap<>());

    /** The migration's log, created and subscribed on first use. */
    Log of(Migration migration) {
        Log log;
        boolean created = false;
        synchronized (logs) {
            log = logs.get(migration);
            if (log == null) {
                log = new Log();
                logs.put(migration, log);
                created = true;
            }
        }
        if (created) {
            // An ended migration hands its end event over at once.
            migration.subscribe(log);
        }
        return log;
    }

    /** {@code Last-Event-ID}, when it is one of ours (a number); anything else counts as none. */
    static Long lastEventId(String header) {
        if (header == null || header.isBlank()) {
            return null;
        }
        try {
            long id = Long.parseLong(header.trim());
            return id >= 0 ? id : null;
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /**
     * One migration's numbered events and open streams. An event is numbered where it happens, on the
     * migration's own thread (the flow's, inside the downtime too), and turned into text and written on
     * each stream's event loop: a client that watches must not lengthen the downtime it watches.
     */
    static final class Log implements Consumer<Migration.Event> {
        /** An event, its text made once, by the first stream that writes it. */
        private static final class Entry {
            private final long id;
            private final Migration.Event event;
            private String text;

            Entry(long id, Migration.Event event) {
                this.id = id;
                this.event = event;
            }

            long id() {
                return id;
            }

            synchronized String text() {
                if (text == null) {
                    text = "id: " + id + "\nevent: " + event.type() + "\ndata: " + json(event.data()) + "\n\n";
                }
                return text;
            }
        }

        private final Deque<Entry> kept = new ArrayDeque<>();
        private final List<ChannelHandlerContext> streams = new ArrayList<>();
        private long nextId = 1;
        private long endId = -1;

        @Override
        public synchronized void accept(Migration.Event event) {
            Entry entry = record(event);
            boolean ended = endId >= 0;
            // Each stream's tasks run in order on its event loop: the events, then the end of the stream.
            for (ChannelHandlerContext stream : streams) {
                try {
                    stream.executor().execute(() -> {
                        write(stream, entry);
                        if (ended) {
                            close(stream);
                        }
                    });
                } catch (RejectedExecutionException e) {
                    // The API's event loops are shutting down, and the stream with them: the migration goes on.
                }
            }
            if (ended) {
                streams.clear();
            }
        }

        /** Whether a client that saw event {@code lastId} has seen the end: nothing more will come. */
        synchronized boolean sawEnd(Long lastId) {
            return lastId != null && endId >= 0 && lastId >= endId && lastId < nextId;
        }

        /**
         * Starts a stream: {@code retry:}, then what the client missed since {@code lastId} (or the
         * current state), then every event as it comes until the end.
         */
        synchronized void attach(ChannelHandlerContext ctx, Migration migration, Long lastId) {
            ctx.writeAndFlush(new DefaultHttpContent(Unpooled.copiedBuffer("retry: " + RETRY_MILLIS + "\n\n", StandardCharsets.UTF_8)));
            List<Entry> missed = missedSince(lastId);
            if (missed == null) {
                // A new client, or one too far behind: the state now (the end's, once ended).
                missed = List.of(endId >= 0 ? kept.getLast() : record(new Migration.Event("progress", migration.view())));
            }
            for (Entry entry : missed) {
                write(ctx, entry);
            }
            if (endId >= 0) {
                close(ctx);
                return;
            }
            streams.add(ctx);
            ctx.channel().closeFuture().addListener(f -> detach(ctx));
        }

        private synchronized void detach(ChannelHandlerContext ctx) {
            streams.remove(ctx);
        }

        /** The kept events after {@code lastId}, or null when the client is new or the gap is no longer kept. */
        private List<Entry> missedSince(Long lastId) {
            if (lastId == null || lastId >= nextId || kept.isEmpty() || kept.getFirst().id() > lastId + 1) {
                return null;
            }
            List<Entry> missed = new ArrayList<>();
            for (Entry entry : kept) {
                if (entry.id() > lastId) {
                    missed.add(entry);
                }
            }
            return missed.isEmpty() ? null : missed;
        }

        private Entry record(Migration.Event event) {
            long id = nextId++;
            Entry entry = new Entry(id, event);
            kept.addLast(entry);
            while (kept.size() > KEPT) {
                kept.removeFirst();
            }
            if (event.type().equals("end")) {
                endId = id;
                // Whoever resumes from here on gets the end, which holds the final state: the events
                // before it are of no more use, and an ended migration stays in the history for long.
                kept.clear();
                kept.addLast(entry);
            }
            return entry;
        }

        private static void write(ChannelHandlerContext ctx, Entry entry) {
            if (ctx.channel().isActive()) {
                ctx.writeAndFlush(new DefaultHttpContent(Unpooled.copiedBuffer(entry.text(), StandardCharsets.UTF_8)));
            }
        }

        private static void close(ChannelHandlerContext ctx) {
            ctx.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT).addListener(ChannelFutureListener.CLOSE);
        }

        private static String json(Object data) {
            try {
                return Json.mapper().writeValueAsString(data);
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }
    }
}
