package dev.ferry.device.spi;

import java.util.regex.Pattern;

/**
 * A device kind, as {@link java.util.ServiceLoader} finds it: its name and traits, and a factory of its
 * devices. Implementations need a public no-argument constructor and must be stateless: one provider
 * creates every device of its kind, in every VM of the daemon.
 */
public interface DeviceKindProvider {
    /** What a kind's name may be: lower-case letters, digits and '-', starting with a letter, at most 32. */
    Pattern NAME = Pattern.compile("[a-z][a-z0-9-]{0,31}");

    /**
     * The kind's name: the {@code kind} of a device in the API, in {@code --device-kinds}, in the migration's VM
     * description and in the header of the device's data (D8 checks it). Must match {@link #NAME}.
     */
    String name();

    /** One line for people: what the device does. */
    default String description() {
        return name();
    }

    /**
     * Whether the device can implement NDMA at all (D3). A kind that cannot is never configured with
     * {@code ndma}; it has no v2 RUNNING_P2P and keeps P2P off in its VM (M2).
     */
    default boolean ndmaCapable() {
        return true;
    }

    /** Whether a device of this kind supports NDMA when its configuration does not say. */
    default boolean defaultNdma() {
        return ndmaCapable();
    }

    /** Whether a device of this kind has internal dirty logging (pre-copy, W4) when its configuration does not say. */
    default boolean defaultPreCopy() {
        return false;
    }

    /** Its device memory when the configuration does not say: a multiple of 4096 bytes, at most 1 GiB. */
    long defaultMemoryBytes();

    /**
     * The version of this kind's data format: what {@link DeviceFunction#saveRegisters} writes and
     * {@link DeviceFunction#loadRegisters} reads. It goes into the stream's header, where a device refuses any
     * other (D8), and into the migration's VM description, where the destination refuses a version it does
     * not read before anything moves (F8). Raise it whenever the register layout changes.
     */
    default int formatVersion() {
        return 1;
    }

    /**
     * Whether a device of this kind may be configured with {@code reinitMs} (W8): it does timed work that
     * changes its bulk state whole ({@link DeviceFunction#timedWork}).
     */
    default boolean reinitialises() {
        return false;
    }

    /**
     * Creates the function of one device, which the core calls as that device's registers, work and state
     * image. Called once per device, with its device memory in place and zero.
     */
    DeviceFunction create(DeviceContext context);
}
