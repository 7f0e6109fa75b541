package dev.ferry.orchestrator.config;

import java.nio.file.Path;

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
 * @param maxTotalMemoryBytes   guest and device memory of all VMs together; 0 for as much as the JVM's
 *                              direct-memory limit allows (less a reserve for network buffers)
 */
public record FerrydConfig(Endpoint http, Endpoint migration, byte[] token, Path tlsDir, boolean insecure, int maxVms,
                           long maxVmMemoryBytes, int maxIncomingMigrations, int migrationHistory, int apiThreads,
                           long memoryPoolBytes, long maxTotalMemoryBytes) {
    /** Default memory pool: 1 GiB. */
    public static final long DEFAULT_MEMORY_POOL_BYTES = 1L << 30;
    public static final Endpoint DEFAULT_HTTP = new Endpoint("127.0.0.1", 7070);
    public static final Endpoint DEFAULT_MIGRATION = new Endpoint("127.0.0.1", 7071);

    public FerrydConfig {
        token = token.clone();
        if (maxVms < 1 || maxVmMemoryBytes < 4096 || maxIncomingMigrations < 1 || migrationHistory < 0 || apiThreads < 1) {
            throw new IllegalArgumentException("limits must be positive");
        }
        if (memoryPoolBytes < 0) {
            throw new IllegalArgumentException("memoryPoolBytes must not be negative: " + memoryPoolBytes);
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
                DEFAULT_MEMORY_POOL_BYTES, 0);
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
                migrationHistory, apiThreads, memoryPoolBytes, maxTotalMemoryBytes);
    }

    public FerrydConfig withToken(byte[] newToken) {
        return new FerrydConfig(http, migration, newToken, tlsDir, insecure, maxVms, maxVmMemoryBytes, maxIncomingMigrations,
                migrationHistory, apiThreads, memoryPoolBytes, maxTotalMemoryBytes);
    }

    public FerrydConfig withMemory(long poolBytes, long maxTotalBytes) {
        return new FerrydConfig(http, migration, token, tlsDir, insecure, maxVms, maxVmMemoryBytes, maxIncomingMigrations,
                migrationHistory, apiThreads, poolBytes, maxTotalBytes);
    }

    public FerrydConfig withTlsDir(Path dir) {
        return new FerrydConfig(http, migration, token, dir, insecure, maxVms, maxVmMemoryBytes, maxIncomingMigrations,
                migrationHistory, apiThreads, memoryPoolBytes, maxTotalMemoryBytes);
    }
}
