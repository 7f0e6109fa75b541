package dev.ferry.device.conformance;

import dev.ferry.device.DeviceConfig;
import dev.ferry.device.TransitionListener;
import dev.ferry.device.Device;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.migration.TransitionStep;
import dev.ferry.device.vm.Vm;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Predicate;

/**
 * The v1 state machine (SPEC §1, D1–D10): every reachable start state against every requested value, against
 * tables written out from the rules; reset from every state; the priority order as the steps a write reports.
 * A table cell belongs to the rule that decides it; D2 holds in every cell.
 */
final class StateChecks {
    /** A device with NDMA. Cells: a number is success into that state, F failure unchanged, E failure into ERROR. */
    static final String NDMA_TABLE = """
            start  0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
                0  0  1  2  3  4  F  F  F  8  9 10 11 12  F  F  F
                1  0  1  2  3  4  F  F  F  8  9 10 11 12  F  F  F
                2  0  1  2  F  4  F  F  F  8  9 10  F 12  F  F  F
                3  0  1  2  3  4  F  F  F  8  9 10 11 12  F  F  F
                4  0  1  2  3  4  F  F  F  8  9 10 11 12  F  F  F
                8  0  1  2  3  4  F  F  F  8  9 10 11 12  F  F  F
                9  0  1  2  3  4  F  F  F  8  9 10 11 12  F  F  F
               10  0  1  2  F  4  F  F  F  8  9 10  F 12  F  F  F
               11  0  1  2  3  4  F  F  F  8  9 10 11 12  F  F  F
               12  0  1  2  3  4  F  F  F  8  9 10 11 12  F  F  F
                6  F  F  F  F  F  F  F  F  F  F  F  F  F  F  F  F
            """;

    /** A device without NDMA (D3): every request with NDMA fails and changes nothing. */
    static final String NO_NDMA_TABLE = """
            start  0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
                0  0  1  2  3  4  F  F  F  F  F  F  F  F  F  F  F
                1  0  1  2  3  4  F  F  F  F  F  F  F  F  F  F  F
                2  0  1  2  F  4  F  F  F  F  F  F  F  F  F  F  F
                3  0  1  2  3  4  F  F  F  F  F  F  F  F  F  F  F
                4  0  1  2  3  4  F  F  F  F  F  F  F  F  F  F  F
                6  F  F  F  F  F  F  F  F  F  F  F  F  F  F  F  F
            """;

    /** Leaving RESUMING with nothing written: every request that clears RESUMING fails into ERROR (D8). */
    static final String EMPTY_RESUMING_TABLE = """
            start  0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
                4  E  E  E  E  4  F  F  F  E  E  E  E 12  F  F  F
               12  E  E  E  E  4  F  F  F  E  E  E  E 12  F  F  F
            """;

    /** The same without NDMA: start 12 cannot be reached, and NDMA requests fail unchanged (D3). */
    static final String EMPTY_RESUMING_NO_NDMA_TABLE = """
            start  0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
                4  E  E  E  E  4  F  F  F  F  F  F  F  F  F  F  F
            """;

    /** Values that are never valid beyond 0–15 (D1). */
    private static final int[] OUT_OF_RANGE = {16, 31, 255, -1};

    private StateChecks() {
    }

    /** The rule that decides a cell of the table (D2 holds in all of them). */
    static Rule ruleOf(int start, int requested, boolean ndma) {
        DeviceState from = DeviceState.of(start);
        DeviceState to = DeviceState.of(requested);
        if (from.isError()) {
            return Rule.D4;
        }
        if (!to.isValidRequest()) {
            return Rule.D1;
        }
        if (to.ndma() && !ndma) {
            return Rule.D3;
        }
        if (from.stopCopy() && to.preCopy()) {
            return Rule.D6;
        }
        if (to.resuming()) {
            return Rule.D7;
        }
        if (from.resuming()) {
            return Rule.D8;
        }
        if (from.saving() && !to.saving()) {
            return Rule.D9;
        }
        return Rule.D2;
    }

    /** The table's cells that belong to {@code rule} (every cell for D2), in each configuration of the kind. */
    static String table(Rig rig, Rule rule) {
        int cells = 0;
        for (DeviceConfig config : rig.configs()) {
            byte[] stream = rig.twinStream(config);
            String table = config.ndma() ? NDMA_TABLE : NO_NDMA_TABLE;
            try (Vm vm = rig.boot(config)) {
                Probe probe = new Probe(vm);
                cells += check(probe, table, stream, rule, config.ndma());
                cells += check(probe, config.ndma() ? EMPTY_RESUMING_TABLE : EMPTY_RESUMING_NO_NDMA_TABLE, new byte[0], rule,
                        config.ndma());
                if (rule == Rule.D1 || rule == Rule.D2) {
                    for (int bits : OUT_OF_RANGE) {
                        probe.begin();
                        cell(probe, DeviceState.RUNNING, bits, "F", Rule.D1);
                        cells++;
                    }
                }
            }
        }
        return cells + " cells of the v1 table (start state x requested value), NDMA " + (rig.kind().ndmaCapable() ? "on and off" : "off")
                + ", pre-copy off and on";
    }

    private static int check(Probe probe, String table, byte[] stream, Rule rule, boolean ndma) {
        int cells = 0;
        String[] lines = table.strip().split("\n");
        for (int row = 1; row < lines.length; row++) {
            String[] columns = lines[row].trim().split("\\s+");
            int start = Integer.parseInt(columns[0]);
            for (int requested = 0; requested < 16; requested++) {
                if (rule != Rule.D2 && ruleOf(start, requested, ndma) != rule) {
                    continue;
                }
                probe.begin();
                reach(probe, start, stream);
                cell(probe, DeviceState.of(start), requested, columns[requested + 1], rule);
                cells++;
            }
        }
        return cells;
    }

    /** One write and D2's three outcomes, against the expected cell. */
    private static void cell(Probe probe, DeviceState before, int requested, String expected, Rule rule) {
        TransitionResult result = probe.set(requested);
        DeviceState now = probe.device().state();
        if (!now.equals(result.state())) {
            throw probe.violation("the write reported " + result.state() + " but the device is in " + now);
        }
        String actual;
        if (result instanceof TransitionResult.Succeeded) {
            actual = Integer.toString(now.bits());
            if (now.bits() != requested) {
                throw probe.violation("a successful write left the device in " + now + ", not the requested " + DeviceState.of(requested));
            }
        } else if (result instanceof TransitionResult.Failed) {
            actual = "E";
            if (!now.isError()) {
                throw probe.violation("a write that failed into ERROR left the device in " + now);
            }
        } else {
            actual = "F";
            if (!now.equals(before)) {
                throw probe.violation("a refused write changed the state from " + before + " to " + now);
            }
        }
        if (!actual.equals(expected)) {
            throw probe.violation(before + " -> " + DeviceState.of(requested) + ": expected " + describe(expected) + ", got "
                    + describe(actual) + " (" + result.describe() + ")");
        }
    }

    private static String describe(String cell) {
        return switch (cell) {
            case "F" -> "failure with the state unchanged";
            case "E" -> "failure into ERROR";
            default -> "success into " + DeviceState.of(Integer.parseInt(cell));
        };
    }

    /** From RUNNING (after reset) every start state of the tables is one or two writes away. */
    static void reach(Probe probe, int start, byte[] stream) {
        switch (start) {
            case 1 -> {
            }
            case 4, 12 -> {
                probe.require(DeviceState.of(start));
                if (stream.length > 0 && !probe.writeAll(stream, stream.length).accepted()) {
                    throw probe.violation("a twin's whole stream did not load");
                }
            }
            case 6 -> {
                probe.require(DeviceState.RESUMING);
                probe.set(DeviceState.STOP);
                if (!probe.device().state().isError()) {
                    throw probe.violation("leaving RESUMING with no data did not fail into ERROR (D8)");
                }
            }
            default -> probe.require(DeviceState.of(start));
        }
    }

    /** D5: from every state, ERROR included, reset leaves RUNNING with the window discarded. */
    static String reset(Rig rig) {
        int states = 0;
        for (DeviceConfig config : rig.configs()) {
            byte[] stream = rig.twinStream(config);
            try (Vm vm = rig.boot(config)) {
                Probe probe = new Probe(vm);
                List<Integer> starts = new ArrayList<>(List.of(0, 1, 2, 3, 4, 6));
                if (config.ndma()) {
                    starts.addAll(List.of(8, 9, 10, 11, 12));
                }
                for (int start : starts) {
                    probe.begin();
                    reach(probe, start, stream);
                    if (DeviceState.of(start).saving() && start != 6) {
                        probe.read(100);
                    }
                    probe.reset();
                    Device device = probe.device();
                    if (!device.state().equals(DeviceState.RUNNING)) {
                        throw probe.violation("after reset the device is in " + device.state() + ", not RUNNING");
                    }
                    if (device.pendingBytes() != 0 || device.loadedBytes() != 0) {
                        throw probe.violation("after reset the window still holds data: pendingBytes " + device.pendingBytes()
                                + ", loadedBytes " + device.loadedBytes());
                    }
                    // The next save session starts from the first byte of a new stream.
                    probe.require(DeviceState.STOP_COPY);
                    byte[] again = probe.drain(64 * 1024);
                    if (again.length < 4 || ByteBuffer.wrap(again, 5, 4).getInt() != dev.ferry.device.migration.StreamFormat.MAGIC) {
                        throw probe.violation("the save session after reset did not start with the stream's header");
                    }
                    states++;
                }
            }
        }
        return "reset from " + states + " states (every reachable state and ERROR, in each configuration)";
    }

    /** The groups of a write in SPEC §1's priority order, written out from the rules (the kit's own oracle). */
    static List<TransitionStep> expectedSteps(DeviceState cur, DeviceState req) {
        List<TransitionStep> steps = new ArrayList<>();
        add(steps, req.ndma() && !cur.ndma(), TransitionStep.NDMA_SET);
        add(steps, cur.running() && !req.running(), TransitionStep.FREEZE);
        add(steps, req.saving() && !req.running() && !cur.stopCopy(), TransitionStep.CAPTURE);
        add(steps, cur.saving() && !req.saving(), TransitionStep.SAVE_END);
        add(steps, req.resuming() && !cur.resuming(), TransitionStep.RESUME_OPEN);
        add(steps, cur.resuming() && !req.resuming(), TransitionStep.LOAD);
        add(steps, req.running() && !cur.running(), TransitionStep.RESTART);
        add(steps, req.saving() && req.running() && !(cur.saving() && cur.running()), TransitionStep.PRE_COPY_START);
        add(steps, cur.ndma() && !req.ndma(), TransitionStep.NDMA_CLEAR);
        return steps;
    }

    private static void add(List<TransitionStep> steps, boolean when, TransitionStep step) {
        if (when) {
            steps.add(step);
        }
    }

    /** D10, the first half: every successful write of the table reports its groups in the priority order. */
    static int priorityOrder(Rig rig, DeviceConfig config) {
        byte[] stream = rig.twinStream(config);
        int writes = 0;
        try (Vm vm = rig.boot(config)) {
            Probe probe = new Probe(vm);
            List<TransitionStep> seen = Collections.synchronizedList(new ArrayList<>());
            TransitionListener listener = new TransitionListener() {
                @Override
                public void step(Device device, TransitionStep step) {
                    seen.add(step);
                }
            };
            probe.device().addListener(listener);
            Predicate<Integer> valid = bits -> DeviceState.of(bits).isValidRequest() && (config.ndma() || !DeviceState.of(bits).ndma());
            for (int start = 0; start < 16; start++) {
                if (!valid.test(start)) {
                    continue;
                }
                for (int requested = 0; requested < 16; requested++) {
                    DeviceState from = DeviceState.of(start);
                    DeviceState to = DeviceState.of(requested);
                    if (!valid.test(requested) || (from.stopCopy() && to.preCopy())) {
                        continue;
                    }
                    probe.begin();
                    reach(probe, start, stream);
                    seen.clear();
                    probe.require(to);
                    List<TransitionStep> expected = expectedSteps(from, to);
                    if (!seen.equals(expected)) {
                        throw probe.violation(from + " -> " + to + " ran the groups " + seen + ", the priority order asks " + expected);
                    }
                    writes++;
                }
            }
        }
        return writes;
    }
}
