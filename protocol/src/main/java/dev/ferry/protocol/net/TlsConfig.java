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

    /**
     * Reads {@code ca.pem}, {@code cert.pem} (the chain) and {@code key.pem} (PKCS#8, unencrypted) from a
     * directory. Every failure is an {@link IOException} whose message is one sentence naming the file
     * and, for a key in another format, how to convert it.
     */
    public static TlsConfig fromDirectory(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new IOException("TLS directory " + dir + (Files.exists(dir) ? " is not a directory" : " does not exist"));
        }
        Path caFile = dir.resolve("ca.pem");
        Path certFile = dir.resolve("cert.pem");
        Path keyFile = dir.resolve("key.pem");
        String ca = read(caFile);
        String cert = read(certFile);
        String key = read(keyFile);
        requireCertificate(caFile, ca);
        requireCertificate(certFile, cert);
        requirePkcs8(keyFile, key);
        try {
            return fromPem(ca, cert, key);
        } catch (SSLException e) {
            throw new SSLException("TLS files in " + dir + ": " + e.getMessage(), e);
        }
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
        if (!Files.exists(file)) {
            throw new IOException("TLS file " + file + " is missing");
        }
        if (!Files.isReadable(file)) {
            throw new IOException("TLS file " + file + " is not readable by this user");
        }
        return Files.readString(file, StandardCharsets.ISO_8859_1);
    }

    private static void requireCertificate(Path file, String pem) throws IOException {
        if (!pem.contains("-----BEGIN CERTIFICATE-----")) {
            throw new IOException("TLS file " + file + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }
    }

    /**
     * The JDK reads unencrypted PKCS#8 keys only. A key in one of the older per-algorithm formats, which
     * OpenSSL long wrote by default, or an encrypted one, is refused with the command that converts it,
     * rather than with the JDK's "invalid key" that does not say what is wrong.
     */
    private static void requirePkcs8(Path file, String pem) throws IOException {
        String format = pem.contains("-----BEGIN RSA PRIVATE KEY-----") ? "a PKCS#1 RSA key (BEGIN RSA PRIVATE KEY)"
                : pem.contains("-----BEGIN EC PRIVATE KEY-----") ? "a SEC1 EC key (BEGIN EC PRIVATE KEY)"
                : pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") ? "an encrypted key (BEGIN ENCRYPTED PRIVATE KEY)"
                : null;
        if (format != null) {
            throw new IOException("TLS key " + file + " is " + format + "; ferryd reads unencrypted PKCS#8 keys (BEGIN PRIVATE"
                    + " KEY): convert it with 'openssl pkcs8 -topk8 -nocrypt -in " + file + " -out " + file + ".pkcs8' and"
                    + " put the result in its place");
        }
        if (!pem.contains("-----BEGIN PRIVATE KEY-----")) {
            throw new IOException("TLS key " + file + " holds no PEM private key (-----BEGIN PRIVATE KEY-----)");
        }
    }

    private static ByteArrayInputStream stream(String pem) {
        return new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII));
    }
}
