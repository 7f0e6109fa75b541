package dev.ferry.device.migration;

import java.util.Locale;

/**
 * A v1 {@code device_state}: the bit set RUNNING, SAVING, RESUMING, NDMA (SPEC §1).
 *
 * <p>Any int can be held so that invalid requests can be named in errors; {@link #isValidRequest()}
 * says whether a device may be asked to enter it (D1).
 */
public record DeviceState(int bits) {
    public static final int RUNNING_BIT = 1;
    public static final int SAVING_BIT = 2;
    public static final int RESUMING_BIT = 4;
    public static final int NDMA_BIT = 8;

    public static final DeviceState STOP = new DeviceState(0);
    public static final DeviceState RUNNING = new DeviceState(RUNNING_BIT);
    public static final DeviceState STOP_COPY = new DeviceState(SAVING_BIT);
    public static final DeviceState PRE_COPY = new DeviceState(SAVING_BIT | RUNNING_BIT);
    public static final DeviceState RESUMING = new DeviceState(RESUMING_BIT);
    /** The grace state, v2 RUNNING_P2P. */
    public static final DeviceState RUNNING_NDMA = new DeviceState(NDMA_BIT | RUNNING_BIT);
    /** v2 PRE_COPY_P2P. */
    public static final DeviceState PRE_COPY_NDMA = new DeviceState(NDMA_BIT | SAVING_BIT | RUNNING_BIT);
    /** SAVING|RESUMING: the error state, never requestable (D1). */
    public static final DeviceState ERROR = new DeviceState(SAVING_BIT | RESUMING_BIT);

    public static DeviceState of(int bits) {
        return new DeviceState(bits);
    }

    public boolean running() {
        return (bits & RUNNING_BIT) != 0;
    }

    public boolean saving() {
        return (bits & SAVING_BIT) != 0;
    }

    public boolean resuming() {
        return (bits & RESUMING_BIT) != 0;
    }

    public boolean ndma() {
        return (bits & NDMA_BIT) != 0;
    }

    public boolean isError() {
        return bits == ERROR.bits;
    }

    /** Stop-and-copy: SAVING without RUNNING, with or without the superfluous NDMA. */
    public boolean stopCopy() {
        return saving() && !running() && !resuming();
    }

    /** Pre-copy: SAVING with RUNNING. */
    public boolean preCopy() {
        return saving() && running();
    }

    /**
     * D1: the values 0–15 without SAVING+RESUMING together and without RESUMING+RUNNING together.
     */
    public boolean isValidRequest() {
        if (bits < 0 || bits > 15) {
            return false;
        }
        boolean savingAndResuming = saving() && resuming();
        boolean resumingAndRunning = resuming() && running();
        return !savingAndResuming && !resumingAndRunning;
    }

    public DeviceState with(int bit) {
        return new DeviceState(bits | bit);
    }

    public DeviceState without(int bit) {
        return new DeviceState(bits & ~bit);
    }

    /** The v2 state with the same meaning, or {@code null} where v2 has none (8, 10, 12, ...). */
    public MigrationState toMigrationState() {
        for (MigrationState state : MigrationState.values()) {
            if (state.v1().bits == bits) {
                return state;
            }
        }
        return null;
    }

    /**
     * The API's name: bit names joined with {@code |} in the order RUNNING, SAVING, RESUMING, NDMA;
     * {@code STOP} for 0 and {@code ERROR} for the error state.
     */
    public String label() {
        if (isError()) {
            return "ERROR";
        }
        if (bits == 0) {
            return "STOP";
        }
        if (bits < 0 || bits > 15) {
            return Integer.toString(bits);
        }
        StringBuilder sb = new StringBuilder();
        append(sb, RUNNING_BIT, "RUNNING");
        append(sb, SAVING_BIT, "SAVING");
        append(sb, RESUMING_BIT, "RESUMING");
        append(sb, NDMA_BIT, "NDMA");
        return sb.toString();
    }

    private void append(StringBuilder sb, int bit, String name) {
        if ((bits & bit) != 0) {
            if (sb.length() > 0) {
                sb.append('|');
            }
            sb.append(name);
        }
    }

    /**
     * Parses a label: names joined with {@code |} in any order, case-insensitive, or {@code STOP},
     * or {@code ERROR}.
     *
     * @throws IllegalArgumentException for an unknown or repeated name
     */
    public static DeviceState parse(String label) {
        String text = label.trim().toUpperCase(Locale.ROOT);
        if (text.equals("STOP")) {
            return STOP;
        }
        if (text.equals("ERROR")) {
            return ERROR;
        }
        if (text.isEmpty()) {
            throw new IllegalArgumentException("empty device state");
        }
        int bits = 0;
        for (String part : text.split("\\|", -1)) {
            int bit = switch (part.trim()) {
                case "RUNNING" -> RUNNING_BIT;
                case "SAVING" -> SAVING_BIT;
                case "RESUMING" -> RESUMING_BIT;
                case "NDMA" -> NDMA_BIT;
                default -> throw new IllegalArgumentException("unknown device state bit '" + part.trim() + "' in '" + label + "'");
            };
            if ((bits & bit) != 0) {
                throw new IllegalArgumentException("device state bit " + part.trim() + " repeated in '" + label + "'");
            }
            bits |= bit;
        }
        return new DeviceState(bits);
    }

    @Override
    public String toString() {
        return label();
    }
}
