package dev.ferry.orchestrator.migration;

import dev.ferry.device.DeviceModelException;
import dev.ferry.device.vm.IncrementalDigest;
import dev.ferry.device.vm.Vm;
import java.util.HexFormat;

/**
 * One side's part in a verified migration: the frozen-point digest kept up to date while data moves,
 * so that verifying costs what changed since the last pass, not the whole VM (DESIGN: Digest).
 *
 * <p>The source refreshes after each pass it sends; the destination after each pre-copy iteration it
 * applied, before it answers ITERATION_DONE, and every millisecond while the stop-and-copy pages land,
 * so that hashing them runs beside the final transfer rather than after it. At the frozen point (S5
 * after the last pages, R3 after the load) {@link #frozen} hashes only what changed since. The costs
 * measured on the way predict that last step for F9: one change unit hashed per dirty page, and the
 * devices' remaining bytes at the measured rate.
 */
final class Verification implements AutoCloseable {
    private final IncrementalDigest digest;
    // Written and read on the flow's thread only.
    private long hashedUnits;
    private long hashedBytes;
    private long hashingNanos;

    private Verification(IncrementalDigest digest) {
        this.digest = digest;
    }

    /** Starts tracking every write to the VM's memory and its devices' memory. */
    static Verification open(Vm vm) {
        return new Verification(vm.openVerifyDigest());
    }

    /** Hashes what changed since the last refresh; returns how long that took. */
    long refresh() throws MigrationFailure {
        try {
            return measure(digest.refresh());
        } catch (IllegalStateException e) {
            throw new MigrationFailure(MigrationFailure.INTERNAL, "the verify digest could not be refreshed: " + e.getMessage());
        }
    }

    /**
     * The digest of the frozen VM (vCPUs stopped, devices quiescent), as bytes for PREPARED; the time it
     * took goes to the migration ({@code verifyMs}).
     */
    byte[] frozen(Migration migration) throws MigrationFailure {
        IncrementalDigest.Result result;
        try {
            result = digest.digest();
        } catch (DeviceModelException | IllegalStateException e) {
            throw new MigrationFailure(MigrationFailure.INTERNAL, "the frozen VM could not be digested: " + e.getMessage());
        }
        measure(result.work());
        migration.setVerify(result.work().nanos(), result.work().bytes());
        return HexFormat.of().parseHex(result.digest().vm());
    }

    private long measure(IncrementalDigest.Work work) {
        hashedUnits += work.units();
        hashedBytes += work.bytes();
        hashingNanos += work.nanos();
        return work.nanos();
    }

    /**
     * F9: what digesting at the frozen point would cost if the VM froze now with {@code dirtyPages}
     * dirty and {@code deviceBytes} of device data still to come: each dirty page costs the hashing of a
     * change unit, and device bytes cost what a byte cost so far. Zero until something was hashed.
     */
    long predictNanos(long dirtyPages, long deviceBytes) {
        if (hashedUnits == 0 || hashedBytes == 0) {
            return 0;
        }
        double perUnit = (double) hashingNanos / hashedUnits;
        double perByte = (double) hashingNanos / hashedBytes;
        return (long) (dirtyPages * perUnit + deviceBytes * perByte);
    }

    @Override
    public void close() {
        digest.close();
    }
}
