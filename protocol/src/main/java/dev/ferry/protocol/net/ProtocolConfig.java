package dev.ferry.protocol.net;

import dev.ferry.protocol.ProtocolVersion;

/**
 * One side's protocol settings.
 *
 * @param token      the shared token, empty for none; both sides must hold the same
 * @param tls        mutual TLS in front of every channel, or {@code null}
 * @param limits     timeouts and bounds
 * @param minVersion lowest protocol version this side speaks
 * @param maxVersion highest protocol version this side speaks
 */
public record ProtocolConfig(byte[] token, TlsConfig tls, Limits limits, int minVersion, int maxVersion) {
    public ProtocolConfig {
        token = token.clone();
        if (minVersion > maxVersion || minVersion < 1) {
            throw new IllegalArgumentException("bad version range " + minVersion + ".." + maxVersion);
        }
    }

    public static ProtocolConfig of(byte[] token, TlsConfig tls) {
        return new ProtocolConfig(token, tls, Limits.DEFAULT, ProtocolVersion.MIN, ProtocolVersion.MAX);
    }

    public ProtocolConfig withLimits(Limits newLimits) {
        return new ProtocolConfig(token, tls, newLimits, minVersion, maxVersion);
    }

    public ProtocolConfig withVersions(int min, int max) {
        return new ProtocolConfig(token, tls, limits, min, max);
    }

    @Override
    public byte[] token() {
        return token.clone();
    }
}
