package dev.ferry.orchestrator.migration;

import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.Vm;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameDecoder;
import dev.ferry.protocol.FrameEncoder;
import dev.ferry.protocol.PagesBuilder;
import dev.ferry.protocol.net.TokenAuth;
import io.netty.buffer.ByteBuf;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs, once at start and off every request's path, the code a migration runs first on each side: the
 * VM description written and read (Jackson learns the records), a VM built for an incoming migration and
 * every device kind plugged, frames of every kind encoded and decoded, the handshake's HMAC and random
 * nonces. A fresh daemon would otherwise spend hundreds of milliseconds loading and linking classes in
 * the first migration's setup, on both sides, before its first page.
 *
 * <p>It runs as a part of the daemon's start, before the migration listener binds (about a third of a
 * second in a fresh JVM, a few milliseconds in one that has run it): a daemon that accepts migrations
 * is ready to receive one at full speed. Run beside a first migration instead, it made that
 * migration's setup vary from 22 to 109 ms for a 1 GiB VM; after it, 33 to 35 ms.
 */
public final class Warmup implements dev.ferry.orchestrator.Managed {
    private static final Logger LOG = LoggerFactory.getLogger(Warmup.class);

    @Override
    public void start() {
        runQuietly();
    }

    @Override
    public void stop() {
    }

    private static void runQuietly() {
        long start = System.nanoTime();
        try {
            run();
            LOG.debug("warm-up done in {} ms", (System.nanoTime() - start) / 1_000_000);
        } catch (RuntimeException | Error e) {
            // Only time is at stake: the first migration then pays it. But the warm-up runs the code every
            // migration runs, so a failure here is worth an operator's look.
            LOG.warn("warm-up stopped; the first migration will be slower", e);
        }
    }

    /** The warm-up itself, on the calling thread. */
    static void run() {
        List<DeviceConfig> devices = new ArrayList<>();
        for (DeviceKind kind : DeviceKind.values()) {
            devices.add(DeviceConfig.of(kind.label() + "0", kind).withMemoryBytes(64 << 10));
        }
        VmConfig config = new VmConfig("ferry-warmup", 4L << 20, 1, InitialMemory.ZERO, WorkloadConfig.IDLE, P2pPolicy.OFF, devices);
        Map<String, Integer> slots = new LinkedHashMap<>();
        for (int slot = 0; slot < devices.size(); slot++) {
            slots.put(devices.get(slot).id(), slot);
        }
        try (Vm vm = Vm.incoming(config, slots, Vm.Options.DEFAULT)) {
            MigrationPolicy policy = new MigrationPolicy(vm.id(), null, MigrationPolicy.DEFAULT_DOWNTIME_LIMIT_MS, 0, 1,
                    MigrationPolicy.DEFAULT_MAX_ITERATIONS, MigrationPolicy.DEFAULT_TIMEOUT_MS, true, false, false, false, false,
                    dev.ferry.protocol.compression.PageCodec.NONE);
            VmManifest manifest = VmManifest.parse(VmManifest.of(vm, false, "mig-warmup", policy, null).toJson());
            manifest.config(dev.ferry.device.DeviceKinds.builtIn());
        } catch (MigrationFailure e) {
            throw new IllegalStateException(e);
        }
        frames();
        TokenAuth.nonce();
        try {
            javax.crypto.Mac mac = javax.crypto.Mac.getInstance("HmacSHA256");
            mac.init(new javax.crypto.spec.SecretKeySpec(new byte[32], "HmacSHA256"));
            mac.doFinal(new byte[64]);
        } catch (java.security.GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A frame of the kinds a migration sends most, through an encoder and a decoder. */
    private static void frames() {
        EmbeddedChannel encoder = new EmbeddedChannel(new FrameEncoder());
        EmbeddedChannel decoder = new EmbeddedChannel(new FrameDecoder());
        // The buffers a migration channel takes: the pooled allocator's paths, not Netty's default ones.
        encoder.config().setAllocator(dev.ferry.protocol.net.Transport.allocator());
        decoder.config().setAllocator(dev.ferry.protocol.net.Transport.allocator());
        try {
            ByteBuffer page = ByteBuffer.allocateDirect(Frame.Pages.PAGE_SIZE);
            List<Frame> frames = List.of(new Frame.VmDescription(4L << 20, Frame.Pages.PAGE_SIZE, 1, new byte[] {'{', '}'}),
                    new PagesBuilder(encoder.alloc(), 0).addPage(1, page).addZero(2).build(),
                    new Frame.DeviceData(0, 0, encoder.alloc().directBuffer(64).writeZero(64)), new Frame.DataEnd(0, 2),
                    new Frame.IterationEnd(0, 2, 4200), new Frame.IterationDone(0), new Frame.Prepare(false), new Frame.Commit());
            for (Frame frame : frames) {
                encoder.writeOutbound(frame);
            }
            for (Object out = encoder.readOutbound(); out != null; out = encoder.readOutbound()) {
                decoder.writeInbound((ByteBuf) out);
            }
            for (Object in = decoder.readInbound(); in != null; in = decoder.readInbound()) {
                ReferenceCountUtil.release(in);
            }
        } finally {
            encoder.finishAndReleaseAll();
            decoder.finishAndReleaseAll();
        }
    }
}
