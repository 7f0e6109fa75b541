package dev.ferry.protocol.net;

import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.net.ssl.SSLException;

/**
 * Mutual TLS for migration channels: each daemon presents its certificate and requires the peer's,
 * both signed by the same CA. Clients check that the server's certificate names the host they dialled.
 */
public final class TlsConfig {
    private final SslContext server;
    private final SslContext client;

    TlsConfig(SslContext server, SslContext client) {
        this.server = server;
        this.client = client;
    }

    /** Reads {@code ca.pem}, {@code cert.pem} (the chain) and {@code key.pem} (PKCS#8) from a directory. */
    public static TlsConfig fromDirectory(Path dir) throws IOException {
        return fromPem(read(dir.resolve("ca.pem")), read(dir.resolve("cert.pem")), read(dir.resolve("key.pem")));
    }

    /** Builds from PEM text: the trusted CA certificates, this side's certificate chain, and its private key. */
    public static TlsConfig fromPem(String caPem, String certChainPem, String keyPem) throws SSLException {
        try {
            SslContext server = SslContextBuilder.forServer(stream(certChainPem), stream(keyPem))
                    .trustManager(stream(caPem))
                    .clientAuth(ClientAuth.REQUIRE)
                    .protocols("TLSv1.3")
                    .build();
            SslContext client = SslContextBuilder.forClient()
                    .keyManager(stream(certChainPem), stream(keyPem))
                    .trustManager(stream(caPem))
                    .protocols("TLSv1.3")
                    .build();
            return new TlsConfig(server, client);
        } catch (IllegalArgumentException e) {
            throw new SSLException("unreadable TLS material: " + e.getMessage(), e);
        }
    }

    SslHandler serverHandler(ByteBufAllocator allocator) {
        return server.newHandler(allocator);
    }

    SslHandler clientHandler(ByteBufAllocator allocator, String host, int port) {
        return client.newHandler(allocator, host, port);
    }

    private static String read(Path file) throws IOException {
        if (!Files.isReadable(file)) {
            throw new IOException("TLS file " + file + " is missing or unreadable");
        }
        return Files.readString(file, StandardCharsets.US_ASCII);
    }

    private static ByteArrayInputStream stream(String pem) {
        return new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII));
    }
}
