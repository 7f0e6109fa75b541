package dev.ferry.device.conformance;

import dev.ferry.device.Device;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.GraceStates;
import dev.ferry.device.migration.InitialData;
import dev.ferry.device.migration.StreamFormat;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.migration.WindowWrite;
import dev.ferry.device.vm.Vm;
import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The data window (SPEC §2, W1–W6), incremental load, re-initialisation and prediction (W7–W9), and D8's round
 * trips: a device's data, saved while it works and loaded into a twin, gives an equal digest; damaged,
 * truncated, wrong-kind and wrong-version data fails into ERROR. Chunk sizes and damage come from a seeded
 * random source, so a run repeats.
 */
final class WindowChecks {
    static final long SEED = 20261201L;

    private WindowChecks() {
    }

    /** A live save: pre-copy read in seeded odd chunks while the device works, then stop-and-copy to the end. */
    static byte[] liveSave(Vm vm, Probe probe, SplittableRandom random) {
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        Rig.busy(vm, probe, random.nextLong());
        probe.require(DeviceState.PRE_COPY);
        for (int i = 0; i < 3; i++) {
            byte[] some = probe.readBytes(1 + random.nextInt(9000));
            stream.write(some, 0, some.length);
            Rig.busy(vm, probe, random.nextLong());
        }
        // W2: the switch comes wherever the reading stopped, mid-record as likely as not.
        probe.require(GraceStates.saveGrace(probe.device().config().ndma()));
        probe.require(DeviceState.STOP_COPY);
        byte[] rest = probe.drain(1 + random.nextInt(20000));
        stream.write(rest, 0, rest.length);
        if (!probe.device().streamFinished()) {
            throw probe.violation("stop-and-copy read to 0 pending without the end of the stream (W1)");
        }
        return stream.toByteArray();
    }

    /** Loads {@code stream} into the twin in {@code chunk}-byte writes and leaves RESUMING for STOP. */
    static TransitionResult load(Probe twin, byte[] stream, int chunk) {
        twin.begin();
        twin.require(DeviceState.RESUMING);
        WindowWrite written = twin.writeAll(stream, chunk);
        if (written instanceof WindowWrite.Failed failed) {
            return failed.failure();
        }
        return twin.set(DeviceState.STOP);
    }

    /** W1: pending is what can be read; in stop-and-copy 0 pending is the end and stays the end. */
    static String pending(Rig rig) {
        for (DeviceConfig config : rig.configs()) {
            try (Vm vm = rig.boot(config)) {
                Probe probe = new Probe(vm);
                Device device = probe.device();
                probe.begin();
                Rig.busy(vm, probe, 1);
                probe.require(DeviceState.PRE_COPY);
                long pending = device.pendingBytes();
                byte[] preCopy = probe.drain(4096);
                if (preCopy.length < pending) {
                    throw probe.violation("pre-copy reported " + pending + " pending bytes, reading to 0 gave " + preCopy.length);
                }
                probe.require(DeviceState.STOP_COPY);
                pending = device.pendingBytes();
                byte[] stopCopy = probe.drain(3000);
                if (stopCopy.length != pending) {
                    throw probe.violation("stop-and-copy reported " + pending + " pending bytes and streamed " + stopCopy.length);
                }
                if (device.pendingBytes() != 0 || probe.read(100) != 0 || !device.streamFinished()) {
                    throw probe.violation("after the end of the stream more was pending or readable, or the stream was not finished");
                }
            }
        }
        return "pre-copy and stop-and-copy drained to 0 pending in every configuration; stop-and-copy streamed what it reported";
    }

    /** W2 (and W5 with it): a live save, switched mid-record, loads into a twin to an equal digest. */
    static String switchMidRecord(Rig rig) {
        SplittableRandom random = new SplittableRandom(SEED);
        int saves = 0;
        for (DeviceConfig config : rig.configs()) {
            try (Vm source = rig.boot(config); Vm target = rig.boot(config)) {
                for (int i = 0; i < 3; i++) {
                    Probe probe = new Probe(source);
                    probe.begin();
                    byte[] stream = liveSave(source, probe, random);
                    byte[] expected = probe.device().digest();
                    Probe twin = new Probe(target);
                    TransitionResult loaded = load(twin, stream, 1 + random.nextInt(8192));
                    if (!loaded.succeeded()) {
                        throw twin.violation("the live save (" + stream.length + " bytes, switched mid-stream) did not load: "
                                + loaded.describe() + "; saved with: " + probe.violation("").writes());
                    }
                    if (!Arrays.equals(twin.device().digest(), expected)) {
                        throw twin.violation("the twin's digest differs from the source's after loading its live save; saved with: "
                                + probe.violation("").writes());
                    }
                    saves++;
                }
            }
        }
        return saves + " live saves switched to stop-and-copy at seeded points, each loaded to an equal digest";
    }

    /** W3: without internal logging nothing streams in pre-copy, and stop-and-copy alone carries the whole state. */
    static String noLogging(Rig rig) {
        DeviceConfig config = rig.config().withPreCopy(false);
        try (Vm vm = rig.boot(config); Vm target = rig.boot(config)) {
            Probe probe = new Probe(vm);
            Device device = probe.device();
            probe.begin();
            Rig.busy(vm, probe, 3);
            probe.require(DeviceState.PRE_COPY);
            if (device.pendingBytes() != 0 || device.initialBytes() != 0 || probe.read(4096) != 0) {
                throw probe.violation("a device without internal logging streamed in pre-copy: pending " + device.pendingBytes());
            }
            probe.require(DeviceState.STOP_COPY);
            byte[] stream = probe.drain(4096);
            byte[] expected = device.digest();
            Probe twin = new Probe(target);
            TransitionResult loaded = load(twin, stream, 4096);
            if (!loaded.succeeded() || !Arrays.equals(twin.device().digest(), expected)) {
                throw twin.violation("the stop-and-copy stream alone did not load to an equal digest; saved with: "
                        + probe.violation("").writes());
            }
        }
        return "pre-copy streamed nothing, and the stop-and-copy stream alone loaded to an equal digest";
    }

    /** W4: with internal logging, the bulk in pre-copy, then only what changed. */
    static String logging(Rig rig) {
        DeviceConfig config = rig.config().withPreCopy(true);
        try (Vm vm = rig.boot(config)) {
            Probe probe = new Probe(vm);
            Device device = probe.device();
            probe.begin();
            Rig.busy(vm, probe, 4);
            long whole = device.stopCopyBytes();
            probe.require(DeviceState.PRE_COPY);
            long initial = device.initialBytes();
            if (initial <= 0 || initial != device.pendingBytes()) {
                throw probe.violation("pre-copy began with initialBytes " + initial + " and pendingBytes " + device.pendingBytes());
            }
            probe.drain(5000);
            if (device.initialBytes() != 0 || device.dirtyBytes() != 0) {
                throw probe.violation("after reading pre-copy to 0, initialBytes " + device.initialBytes() + " and dirtyBytes "
                        + device.dirtyBytes());
            }
            probe.ownWork(3, 44);
            if (device.dirtyBytes() <= 0) {
                throw probe.violation("writes of device memory after it was read left dirtyBytes at 0");
            }
            probe.require(DeviceState.STOP_COPY);
            byte[] rest = probe.drain(5000);
            if (rest.length >= whole) {
                throw probe.violation("stop-and-copy after pre-copy streamed " + rest.length + " bytes, as much as the whole stream ("
                        + whole + ")");
            }
        }
        return "initialBytes from the bulk down to 0, dirtyBytes after writes, stop-and-copy only what changed";
    }

    /** W5: the same stream in many chunkings loads to the same digest. */
    static String chunking(Rig rig) {
        SplittableRandom random = new SplittableRandom(SEED + 5);
        int loads = 0;
        for (DeviceConfig config : rig.configs()) {
            try (Vm source = rig.boot(config); Vm target = rig.boot(config)) {
                Probe probe = new Probe(source);
                probe.begin();
                byte[] stream = liveSave(source, probe, random);
                byte[] expected = probe.device().digest();
                Probe twin = new Probe(target);
                List<Integer> chunks = List.of(1, 2, 7, 64, 511, 4096, 4105, 1 + random.nextInt(stream.length), stream.length);
                for (int chunk : chunks) {
                    TransitionResult loaded = load(twin, stream, chunk);
                    if (!loaded.succeeded() || !Arrays.equals(twin.device().digest(), expected)) {
                        throw twin.violation("in chunks of " + chunk + " the stream " + (loaded.succeeded() ? "loaded to another digest"
                                : "did not load: " + loaded.describe()) + "; saved with: " + probe.violation("").writes());
                    }
                    loads++;
                }
            }
        }
        return loads + " loads of live saves in chunkings from 1 byte to the whole stream, each to an equal digest";
    }

    /** W6: the window outside its session fails and changes nothing. */
    static String outsideSession(Rig rig) {
        int cases = 0;
        for (DeviceConfig config : rig.configs()) {
            byte[] stream = rig.twinStream(config);
            try (Vm vm = rig.boot(config)) {
                Probe probe = new Probe(vm);
                Device device = probe.device();
                int[] starts = config.ndma() ? new int[] {0, 1, 2, 3, 4, 6, 8, 9, 12} : new int[] {0, 1, 2, 3, 4, 6};
                for (int start : starts) {
                    DeviceState state = DeviceState.of(start);
                    probe.begin();
                    StateChecks.reach(probe, start, start == 4 || start == 12 ? new byte[0] : stream);
                    boolean canRead = state.saving() && !state.isError();
                    boolean canWrite = state.resuming() && !state.isError();
                    long pending = device.pendingBytes();
                    long loaded = device.loadedBytes();
                    if (!canRead) {
                        expectRefused(probe, () -> device.readWindow(java.nio.ByteBuffer.allocate(100)), "a read in " + state);
                    }
                    if (!canWrite) {
                        expectRefused(probe, () -> device.writeWindow(java.nio.ByteBuffer.wrap(stream, 0, Math.min(100, stream.length))),
                                "a write in " + state);
                    }
                    if (!device.state().equals(state) || device.pendingBytes() != pending || device.loadedBytes() != loaded) {
                        throw probe.violation("a refused use of the window changed the device: now " + device.state() + ", pending "
                                + device.pendingBytes() + ", loaded " + device.loadedBytes());
                    }
                    cases++;
                }
            }
        }
        return cases + " states with reads outside SAVING and writes outside RESUMING refused, nothing changed";
    }

    private static void expectRefused(Probe probe, Runnable use, String what) {
        try {
            use.run();
        } catch (Device.WindowException e) {
            probe.note(what + " -> refused");
            return;
        }
        probe.note(what + " -> taken");
        throw probe.violation(what + " was taken");
    }

    /** W7: loadedBytes grows at record boundaries; bad data fails the write that carries it. */
    static String incrementalLoad(Rig rig) {
        DeviceConfig config = rig.config();
        byte[] stream = rig.twinStream(config);
        List<Long> boundaries = boundaries(stream);
        try (Vm vm = rig.boot(config)) {
            Probe twin = new Probe(vm);
            twin.begin();
            twin.require(DeviceState.RESUMING);
            for (int off = 0; off < stream.length; off += 1000) {
                WindowWrite written = twin.write(stream, off, Math.min(1000, stream.length - off));
                long end = off + Math.min(1000, stream.length - off);
                long expected = boundaries.stream().filter(b -> b <= end).mapToLong(Long::longValue).max().orElse(0);
                if (!written.accepted() || written.loadedBytes() != expected) {
                    throw twin.violation("after " + end + " bytes loadedBytes is " + written.loadedBytes() + ", the last complete record"
                            + " ends at " + expected);
                }
            }
            twin.require(DeviceState.STOP);
            // A bad record (an unknown type) fails the write that carries it, into ERROR.
            byte[] bad = stream.clone();
            int second = boundaries.get(0).intValue();
            bad[second] = 99;
            twin.begin();
            twin.require(DeviceState.RESUMING);
            twin.write(bad, 0, second);
            WindowWrite failed = twin.write(bad, second, StreamFormat.RECORD_HEADER_BYTES);
            if (failed.accepted() || !twin.device().state().isError()) {
                throw twin.violation("a record of unknown type was accepted, or the device is not in ERROR");
            }
        }
        return "loadedBytes at every record boundary in 1000-byte writes; an unknown record failed its write into ERROR";
    }

    /** Where each record of a stream ends. */
    static List<Long> boundaries(byte[] stream) {
        java.util.List<Long> ends = new java.util.ArrayList<>();
        java.nio.ByteBuffer buffer = java.nio.ByteBuffer.wrap(stream);
        while (buffer.remaining() >= StreamFormat.RECORD_HEADER_BYTES) {
            buffer.get();
            int length = buffer.getInt();
            buffer.position(buffer.position() + length);
            ends.add((long) buffer.position());
        }
        return ends;
    }

    /** W8: a re-initialisation makes the bulk state initial data again, and the whole still loads. */
    static String reinit(Rig rig) {
        DeviceConfig config = rig.config().withPreCopy(true).withReinitMs(1);
        try (Vm source = rig.boot(config); Vm target = rig.boot(config)) {
            Probe probe = new Probe(source);
            Device device = probe.device();
            probe.begin();
            Rig.busy(source, probe, 8);
            probe.require(DeviceState.PRE_COPY);
            byte[] first = probe.drain(8192);
            InitialData before = device.initialData();
            long reinits = device.stats().reinits();
            for (int i = 0; i < 10_000 && device.stats().reinits() == reinits; i++) {
                device.advanceOwnWork(2_000_000L);
            }
            probe.note("own timed work until a re-initialisation");
            while (device.advanceOwnWork(0)) {
                // let the re-initialisation finish its steps
            }
            if (device.stats().reinits() == reinits) {
                throw probe.violation("the kind says it re-initialises, but no re-initialisation came in 20 s of working time");
            }
            InitialData after = device.initialData();
            if (after.generation() <= before.generation() || device.initialBytes() <= 0) {
                throw probe.violation("after a re-initialisation the initial data is generation " + after.generation()
                        + " (was " + before.generation() + ") with " + device.initialBytes() + " initial bytes");
            }
            byte[] second = probe.drain(8192);
            if (!device.initialData().complete()) {
                throw probe.violation("the new round of initial data was read but is not complete");
            }
            probe.require(DeviceState.STOP_COPY);
            byte[] rest = probe.drain(8192);
            byte[] expected = device.digest();
            byte[] stream = concat(first, second, rest);
            Probe twin = new Probe(target);
            TransitionResult loaded = load(twin, stream, 4096);
            if (!loaded.succeeded() || !Arrays.equals(twin.device().digest(), expected)) {
                throw twin.violation("the stream with a re-initialisation did not load to an equal digest");
            }
        }
        return "a re-initialisation in pre-copy began a new round of initial data, read to its end, and the stream loaded";
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.write(part, 0, part.length);
        }
        return out.toByteArray();
    }

    /** W9: the prediction is exactly what stop-and-copy streams, from several states of a session. */
    static String prediction(Rig rig) {
        int cases = 0;
        for (DeviceConfig config : rig.configs()) {
            try (Vm vm = rig.boot(config)) {
                Probe probe = new Probe(vm);
                Device device = probe.device();
                for (int scenario = 0; scenario < 4; scenario++) {
                    probe.begin();
                    Rig.busy(vm, probe, 10 + scenario);
                    if (scenario >= 1) {
                        probe.require(DeviceState.PRE_COPY);
                    }
                    if (scenario >= 2) {
                        probe.read(3 * 4096 + 77);
                        probe.ownWork(5, scenario);
                    }
                    if (scenario >= 3) {
                        probe.require(GraceStates.saveGrace(config.ndma()));
                    }
                    long predicted = device.stopCopyBytes();
                    probe.require(DeviceState.STOP_COPY);
                    long atStart = device.stopCopyBytes();
                    int some = probe.read(4096 + 13);
                    if (device.stopCopyBytes() != atStart - some) {
                        throw probe.violation("in stop-and-copy, after reading " + some + " of " + atStart + " bytes, the prediction is "
                                + device.stopCopyBytes());
                    }
                    long streamed = some + probe.drain(3000).length;
                    if (streamed != predicted) {
                        throw probe.violation("stopCopyBytes predicted " + predicted + " bytes, stop-and-copy streamed " + streamed);
                    }
                    cases++;
                }
            }
        }
        return cases + " predictions (no session, pre-copy, partly read and dirtied, grace state) equal to what was streamed";
    }

    /** D8: corrupted, truncated, wrong-kind and wrong-version data fail into ERROR. */
    static String roundTrips(Rig rig, List<DeviceKind> others) {
        SplittableRandom random = new SplittableRandom(SEED + 8);
        DeviceConfig config = rig.config().withMemoryBytes(Math.min(rig.config().memoryBytes(), 16 * 1024));
        int cases = 0;
        try (Vm source = rig.boot(config); Vm target = rig.boot(config)) {
            Probe probe = new Probe(source);
            probe.begin();
            byte[] stream = liveSave(source, probe, random);
            Probe twin = new Probe(target);
            // Damage: every byte of the header and of the end, and seeded positions in between.
            java.util.TreeSet<Integer> positions = new java.util.TreeSet<>();
            for (int i = 0; i < Math.min(64, stream.length); i++) {
                positions.add(i);
                positions.add(stream.length - 1 - i);
            }
            for (int i = 0; i < 256; i++) {
                positions.add(random.nextInt(stream.length));
            }
            for (int at : positions) {
                byte[] damaged = stream.clone();
                damaged[at] ^= (byte) (1 + random.nextInt(255));
                expectFailure(twin, load(twin, damaged, 4096), "the stream with byte " + at + " of " + stream.length + " changed");
                cases++;
            }
            for (int i = 0; i < 128; i++) {
                int length = i < 32 ? i : random.nextInt(stream.length);
                expectFailure(twin, load(twin, Arrays.copyOf(stream, length), 4096), "the stream cut to " + length + " of "
                        + stream.length + " bytes");
                cases++;
            }
            expectFailure(twin, load(twin, Arrays.copyOf(stream, stream.length + 1), 4096), "the stream with a byte after its end");
            // Another version of the kind's data format.
            byte[] version = stream.clone();
            int v = rig.kind().formatVersion() + 1;
            version[5 + 4] = (byte) (v >>> 8);
            version[5 + 5] = (byte) v;
            expectFailure(twin, load(twin, version, 4096), "a stream of data format version " + v);
            cases += 2;
        }
        for (DeviceKind other : others) {
            if (other.equals(rig.kind())) {
                continue;
            }
            Rig otherRig = new Rig(other);
            DeviceConfig otherConfig = otherRig.config().withNdma(false).withPreCopy(false);
            byte[] foreign = otherRig.twinStream(otherConfig);
            try (Vm target = rig.boot(config)) {
                Probe twin = new Probe(target);
                expectFailure(twin, load(twin, foreign, 4096), "a stream of a " + other + " device");
                cases++;
            }
        }
        try (Vm target = rig.boot(config)) {
            Probe twin = new Probe(target);
            byte[] otherConfig = rig.twinStream(config.withMemoryBytes(config.memoryBytes() + 4096));
            expectFailure(twin, load(twin, otherConfig, 4096), "a stream of a device with more memory");
            cases++;
        }
        return cases + " damaged, truncated, extended, wrong-version, wrong-kind and wrong-configuration streams, each failed into ERROR";
    }

    private static void expectFailure(Probe twin, TransitionResult result, String what) {
        if (!(result instanceof TransitionResult.Failed) || !twin.device().state().isError()) {
            throw twin.violation(what + " was loaded: " + result.describe());
        }
    }
}
