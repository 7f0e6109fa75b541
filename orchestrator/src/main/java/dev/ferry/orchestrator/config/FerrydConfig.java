package dev.ferry.orchestrator.config;

import dev.ferry.device.DeviceKinds;
import java.nio.file.Path;
import java.util.List;

/**
 * Everything {@code ferryd} is configured with, validated: flags over the config file over defaults.
 *
 * @param http                  control API listener
 * @param migration             migration listener
 * @param token                 bearer token for the API and shared token of the migration handshake; empty for none
 * @param tlsDir                directory of {@code ca.pem}, {@code cert.pem}, {@code key.pem} for mutual TLS on
 *                              migration channels, or {@code null}
 * @param insecure              allow a non-loopback listener without a token
 * @param maxVms                VMs this daemon hosts at most, incoming ones included
 * @param maxVmMemoryBytes      largest VM this daemon creates or accepts
 * @param maxIncomingMigrations incoming migrations at once
 * @param migrationHistory      finished migrations kept for the API
 * @param apiThreads            threads for API requests that block (pause, state writes, digests)
 * @param memoryPoolBytes       guest memory freed by deleted or migrated VMs that is kept, zeroed, for the next
 *                              VM instead of being returned to the operating system (0 keeps none)
 * @param memoryPoolPrefill     fill the pool at start, in the background, with memory allocated and touched then,
 *                              so that the first VMs land in backed memory too (QEMU's {@code -mem-prealloc})
 * @param maxTotalMemoryBytes   guest and device memory of all VMs together; 0 for as much as the JVM's
 *                              direct-memory limit allows (less a reserve for network buffers)
 * @param timeouts              how long migrations wait for a peer
 * @param deviceKinds           the device kinds this daemon hosts: VMs it creates and incoming migrations it takes may
 *                              have only these (F8); every kind it knows by default
 * @param kinds                 the kinds it knows: the built-in kinds, the class path's and those of its device jars
 *                              ({@code --device-jar}), found with {@code ServiceLoader}
 * @param deviceJars            the device jars it was given, in order
 * @param captureDir            where captured migration streams go, or {@code null}: without it a migration cannot be
 *                              captured
 */
public record FerrydConfig(Endpoint http, Endpoint migration, byte[] token, Path tlsDir, boolean insecure, int maxVms,
                           long maxVmMemoryBytes, int maxIncomingMigrations, int migrationHistory, int apiThreads,
                           long memoryPoolBytes, boolean memoryPoolPrefill, long maxTotalMemoryBytes, Timeouts timeouts,
                           List<String> deviceKinds,
                           DeviceKinds kinds, List<Path> deviceJars,
                           Path captureDir) {
    /**
     * How long migrations wait for a peer. Liveness follows bytes: a channel on which nothing at all
     * arrived for {@code keepaliveTimeoutMs} is dropped, and each side sends a keepalive every
     * {@code keepaliveIntervalMs}, so only a dead, frozen or cut-off peer is ever dropped, however slow
     * the link. Nothing else in a migration has a clock of its own, except the handshake and the
     * switchover.
     *
     * @param keepaliveIntervalMs each side sends a keepalive on every channel this often
     * @param keepaliveTimeoutMs  a channel on which nothing arrived for this long is dropped (at least twice the interval)
     * @param handshakeTimeoutMs  a channel must complete its handshake, and a source describe its VM, within this
     * @param switchoverTimeoutMs after COMMIT, how long the source waits for CONFIRM before the VM is held (F5)
     */
    public record Timeouts(long keepaliveIntervalMs, long keepaliveTimeoutMs, long handshakeTimeoutMs, long switchoverTimeoutMs) {
        public static final Timeouts DEFAULT = new Timeouts(1_000, 10_000, 10_000, 30_000);

        public Timeouts {
            if (keepaliveIntervalMs < 10 || keepaliveTimeoutMs < 2 * keepaliveIntervalMs) {
                throw new IllegalArgumentException("keepaliveIntervalMs must be at least 10 and keepaliveTimeoutMs at least twice"
                        + " it: " + keepaliveIntervalMs + ", " + keepaliveTimeoutMs);
            }
            if (handshakeTimeoutMs < 100 || switchoverTimeoutMs < 100) {
                throw new IllegalArgumentException("handshakeTimeoutMs and switchoverTimeoutMs must be at least 100: "
                        + handshakeTimeoutMs + ", " + switchoverTimeoutMs);
            }
        }
    }

    /** Default memory pool: 1 GiB. */
    public static final long DEFAULT_MEMORY_POOL_BYTES = 1L << 30;
    public static final Endpoint DEFAULT_HTTP = new Endpoint("127.0.0.1", 7070);
    public static final Endpoint DEFAULT_MIGRATION = new Endpoint("127.0.0.1", 7071);
    /** Every built-in kind. */
    public static final List<String> ALL_KINDS = DeviceKinds.builtIn().names();

    public FerrydConfig {
        token = token.clone();
        if (maxVms < 1 || maxVmMemoryBytes < 4096 || maxIncomingMigrations < 1 || migrationHistory < 0 || apiThreads < 1) {
            throw new IllegalArgumentException("limits must be positive");
        }
        if (memoryPoolBytes < 0) {
            throw new IllegalArgumentException("memoryPoolBytes must not be negative: " + memoryPoolBytes);
        }
        if (memoryPoolPrefill && memoryPoolBytes == 0) {
            throw new IllegalArgumentException("memoryPoolPrefill needs a pool to fill: memoryPoolBytes is 0");
        }
        if (timeouts == null) {
            throw new IllegalArgumentException("timeouts are required");
        }
        if (kinds == null) {
            kinds = DeviceKinds.builtIn();
        }
        deviceJars = deviceJars == null ? List.of() : List.copyOf(deviceJars);
        deviceKinds = List.copyOf(deviceKinds);
        if (deviceKinds.isEmpty()) {
            throw new IllegalArgumentException("deviceKinds must name at least one kind (known: " + kinds.known() + ")");
        }
        for (String kind : deviceKinds) {
            if (!kinds.contains(kind)) {
                throw new IllegalArgumentException("deviceKinds: unknown kind '" + kind + "' (known: " + kinds.known() + ")");
            }
        }
        if (maxTotalMemoryBytes < 0) {
            throw new IllegalArgumentException("maxTotalMemoryBytes must not be negative: " + maxTotalMemoryBytes);
        }
        if (!insecure && token.length == 0) {
            for (Endpoint endpoint : new Endpoint[] {http, migration}) {
                if (!endpoint.isLoopback()) {
                    throw new IllegalArgumentException("refusing to listen on " + endpoint + " without a token: anyone who can"
                            + " reach it could control VMs or send one; give --token-file, bind to loopback, or pass --insecure");
                }
            }
        }
    }

    /** Defaults: loopback listeners on 7070 and 7071, no token, no TLS. */
    public static FerrydConfig defaults() {
        return new FerrydConfig(DEFAULT_HTTP, DEFAULT_MIGRATION, new byte[0], null, false, 64, 64L << 30, 4, 100, 8,
                DEFAULT_MEMORY_POOL_BYTES, false, 0, Timeouts.DEFAULT, ALL_KINDS,
                DeviceKinds.builtIn(), List.of(), null);
    }

    @Override
    public byte[] token() {
        return token.clone();
    }

    public boolean hasToken() {
        return token.length > 0;
    }

    public FerrydConfig withListeners(Endpoint newHttp, Endpoint newMigration) {
        return new FerrydConfig(newHttp, newMigration, token, tlsDir, insecure, maxVms, maxVmMemoryBytes, maxIncomingMigrations,
                migrationHistory, apiThreads, memoryPoolBytes, memoryPoolPrefill,
                maxTotalMemoryBytes, timeouts, deviceKinds, kinds, deviceJars, captureDir);
    }

    public FerrydConfig withToken(byte[] newToken) {
        return new FerrydConfig(http, migration, newToken, tlsDir, insecure, maxVms, maxVmMemoryBytes, maxIncomingMigrations,
                migrationHistory, apiThreads, memoryPoolBytes, memoryPoolPrefill,
                maxTotalMemoryBytes, timeouts, deviceKinds, kinds, deviceJars, captureDir);
    }

    public FerrydConfig withMemory(long poolBytes, boolean prefill, long maxTotalBytes) {
        return new FerrydConfig(http, migration, token, tlsDir, insecure, maxVms, maxVmMemoryBytes, maxIncomingMigrations,
                migrationHistory, apiThreads, poolBytes, prefill,
                maxTotalBytes, timeouts, deviceKinds, kinds, deviceJars, captureDir);
    }

    public FerrydConfig withTimeouts(Timeouts newTimeouts) {
        return new FerrydConfig(http, migration, token, tlsDir, insecure, maxVms, maxVmMemoryBytes, maxIncomingMigrations,
                migrationHistory, apiThreads, memoryPoolBytes, memoryPoolPrefill,
                maxTotalMemoryBytes, newTimeouts, deviceKinds, kinds, deviceJars, captureDir);
    }

    public FerrydConfig withDeviceKinds(List<String> kinds) {
        return new FerrydConfig(http, migration, token, tlsDir, insecure, maxVms, maxVmMemoryBytes, maxIncomingMigrations,
                migrationHistory, apiThreads, memoryPoolBytes, memoryPoolPrefill,
                maxTotalMemoryBytes, timeouts, kinds, this.kinds, deviceJars, captureDir);
    }

    /**
     * These settings with the kinds of {@code jars} known too (as {@code --device-jar} gives them), every known kind
     * hosted unless {@code hosted} names some.
     */
    public FerrydConfig withDeviceJars(List<Path> jars, List<String> hosted) throws DeviceKinds.BadDeviceJar {
        DeviceKinds loaded = DeviceKinds.load(jars);
        return new FerrydConfig(http, migration, token, tlsDir, insecure, maxVms, maxVmMemoryBytes, maxIncomingMigrations,
                migrationHistory, apiThreads, memoryPoolBytes, memoryPoolPrefill,
                maxTotalMemoryBytes, timeouts, hosted == null ? loaded.names() : hosted,
                loaded, jars, captureDir);
    }

    public FerrydConfig withCaptureDir(Path dir) {
        return new FerrydConfig(http, migration, token, tlsDir, insecure, maxVms, maxVmMemoryBytes, maxIncomingMigrations,
                migrationHistory, apiThreads, memoryPoolBytes, memoryPoolPrefill,
                maxTotalMemoryBytes, timeouts, deviceKinds, kinds, deviceJars, dir);
    }

    public FerrydConfig withTlsDir(Path dir) {
        return new FerrydConfig(http, migration, token, dir, insecure, maxVms, maxVmMemoryBytes, maxIncomingMigrations,
                migrationHistory, apiThreads, memoryPoolBytes, memoryPoolPrefill,
                maxTotalMemoryBytes, timeouts, deviceKinds, kinds, deviceJars, captureDir);
    }
}
