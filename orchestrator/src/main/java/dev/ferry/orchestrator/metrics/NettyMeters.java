package dev.ferry.orchestrator.metrics;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import dev.ferry.protocol.net.Transport;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufAllocatorMetric;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.SingleThreadEventExecutor;

/**
 * Netty's buffers and event loops, named and labelled for Prometheus. Micrometer's own Netty binders
 * export gauges without help text, label the allocator with its identity hash (a new series on
 * every restart) and the loops with thread names that count up per group created.
 */
final class NettyMeters {
    private NettyMeters() {
    }

    /**
     * What Netty's buffer allocators hold, labelled {@code allocator}: {@code default}, Netty's default
     * one that the API and everything but the migration channels use (4.2's adaptive one, or what
     * -Dio.netty.allocator.type selects), and {@code migration},
     * the pooled one of every migration channel ({@link Transport#allocator()}).
     */
    static void bindAllocators(MeterRegistry registry) {
        bindAllocator(registry, "default", ByteBufAllocator.DEFAULT);
        bindAllocator(registry, "migration", Transport.allocator());
    }

    private static void bindAllocator(MeterRegistry registry, String name, ByteBufAllocator allocator) {
        if (allocator instanceof ByteBufAllocatorMetricProvider provider) {
            ByteBufAllocatorMetric metric = provider.metric();
            Gauge.builder("netty.allocator.memory.used", metric, ByteBufAllocatorMetric::usedDirectMemory).baseUnit("bytes")
                    // The metric object may be made anew per call: held here, not weakly as gauges hold by default.
                    .strongReference(true)
                    .description("Memory Netty's buffer allocators hold (network buffers; guest memory is not counted here)")
                    .tags("allocator", name, "memory_type", "direct").register(registry);
            Gauge.builder("netty.allocator.memory.used", metric, ByteBufAllocatorMetric::usedHeapMemory).baseUnit("bytes")
                    .strongReference(true)
                    .description("Memory Netty's buffer allocators hold (network buffers; guest memory is not counted here)")
                    .tags("allocator", name, "memory_type", "heap").register(registry);
        }
    }

    /** Tasks queued per event loop of {@code group}, labelled by the group's name and the loop's index. */
    static void bindEventLoops(MeterRegistry registry, String name, EventLoopGroup group) {
        int index = 0;
        for (EventExecutor executor : group) {
            if (executor instanceof SingleThreadEventExecutor loop) {
                Gauge.builder("netty.eventexecutor.tasks.pending", loop, SingleThreadEventExecutor::pendingTasks)
                        .description("Tasks waiting in an event loop's queue: a backlog delays every channel on that loop")
                        .tags("group", name, "loop", Integer.toString(index)).register(registry);
            }
            index++;
        }
    }
}
