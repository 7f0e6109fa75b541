package dev.ferry.device;

import static dev.ferry.device.TestVms.require;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionFailure;
import dev.ferry.device.migration.TransitionResult;
import dev.ferry.device.vm.Vm;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Every reachable v1 state against every requested value 0–15, against tables written out by hand
 * from SPEC §1 (D1–D9). Cells: a number is success into that state, {@code F} is failure with the
 * state unchanged, {@code E} is failure into ERROR.
 */
class V1TransitionTableTest {

    /** An NDMA-capable device. Start states 4 and 12 hold a complete, valid stream. */
    private static final String NDMA_TABLE = """
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
    private static final String NO_NDMA_TABLE = """
            start  0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
                0  0  1  2  3  4  F  F  F  F  F  F  F  F  F  F  F
                1  0  1  2  3  4  F  F  F  F  F  F  F  F  F  F  F
                2  0  1  2  F  4  F  F  F  F  F  F  F  F  F  F  F
                3  0  1  2  3  4  F  F  F  F  F  F  F  F  F  F  F
                4  0  1  2  3  4  F  F  F  F  F  F  F  F  F  F  F
                6  F  F  F  F  F  F  F  F  F  F  F  F  F  F  F  F
            """;

    /** Leaving RESUMING with nothing written: every request that clears RESUMING fails into ERROR (D8). */
    private static final String EMPTY_RESUMING_TABLE = """
            start  0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
                4  E  E  E  E  4  F  F  F  E  E  E  E 12  F  F  F
               12  E  E  E  E  4  F  F  F  E  E  E  E 12  F  F  F
            """;

    private Vm vm;

    @BeforeEach
    void boot() {
        vm = TestVms.boot(TestVms.small("nic0", DeviceKind.NIC), TestVms.small("crypto0", DeviceKind.CRYPTO));
    }

    @AfterEach
    void close() {
        vm.close();
    }

    @Test
    void ndmaDeviceMatchesTheTable() {
        check(vm.device("nic0").orElseThrow(), NDMA_TABLE, true);
    }

    @Test
    void deviceWithoutNdmaMatchesTheTable() {
        check(vm.device("crypto0").orElseThrow(), NO_NDMA_TABLE, true);
    }

    @Test
    void leavingResumingWithoutDataFailsIntoError() {
        check(vm.device("nic0").orElseThrow(), EMPTY_RESUMING_TABLE, false);
    }

    @Test
    void unreachableValuesAreNeverEntered() {
        Device nic = vm.device("nic0").orElseThrow();
        for (int bits : new int[] {5, 7, 13, 14, 15, 16, 31, -1}) {
            TransitionResult result = nic.setState(DeviceState.of(bits));
            assertThat(result).isInstanceOf(TransitionResult.Rejected.class);
            assertThat(((TransitionResult.Rejected) result).failure()).isEqualTo(TransitionFailure.INVALID_STATE);
            assertThat(nic.state()).isEqualTo(DeviceState.RUNNING);
        }
    }

    private void check(Device device, String table, boolean validStream) {
        byte[] stream = validStream ? twinStream(device) : new byte[0];
        Map<String, String> mismatches = new LinkedHashMap<>();
        String[] lines = table.strip().split("\n");
        for (int row = 1; row < lines.length; row++) {
            String[] cells = lines[row].trim().split("\\s+");
            int start = Integer.parseInt(cells[0]);
            for (int requested = 0; requested < 16; requested++) {
                String expected = cells[requested + 1];
                reach(device, start, stream);
                DeviceState before = device.state();
                assertThat(before.bits()).as("reached start %d", start).isEqualTo(start);
                TransitionResult result = device.setState(DeviceState.of(requested));
                String actual = describe(result);
                // D2: exactly one outcome, and it is the state the device reports.
                assertThat(device.state()).isEqualTo(result.state());
                if (result instanceof TransitionResult.Rejected) {
                    assertThat(result.state()).isEqualTo(before);
                }
                if (!actual.equals(expected)) {
                    mismatches.put(start + " -> " + requested, "expected " + expected + ", got " + actual + " (" + result.describe() + ")");
                }
            }
        }
        assertThat(mismatches).isEmpty();
    }

    private static String describe(TransitionResult result) {
        if (result instanceof TransitionResult.Succeeded s) {
            return Integer.toString(s.state().bits());
        }
        return result instanceof TransitionResult.Failed ? "E" : "F";
    }

    /** A complete stream of a device configured like {@code device}, saved from a twin. */
    private byte[] twinStream(Device device) {
        try (Vm twin = TestVms.boot(device.config())) {
            return TestVms.saveWhole(twin.devices().get(0));
        }
    }

    /** D5 resets to RUNNING; from there every reachable state is one or two writes away. */
    private static void reach(Device device, int start, byte[] stream) {
        device.reset();
        switch (start) {
            case 1 -> {
            }
            case 4, 12 -> {
                require(device.setState(DeviceState.of(start)));
                device.writeWindow(java.nio.ByteBuffer.wrap(stream));
            }
            case 6 -> {
                require(device.setState(DeviceState.RESUMING));
                TransitionResult failed = device.setState(DeviceState.STOP);
                assertThat(failed).isInstanceOf(TransitionResult.Failed.class);
            }
            default -> require(device.setState(DeviceState.of(start)));
        }
    }
}
