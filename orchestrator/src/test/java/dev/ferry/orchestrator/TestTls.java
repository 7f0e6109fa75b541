package dev.ferry.orchestrator;

import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.util.Base64;

/** Certificates and {@code --tls-dir} directories for tests, made with Netty's test PKI. */
public final class TestTls {
    private TestTls() {
    }

    public static X509Bundle ca(String name) throws Exception {
        return new CertificateBuilder().subject("CN=" + name).setIsCertificateAuthority(true).ecp256().buildSelfSigned();
    }

    /** A daemon's certificate for 127.0.0.1, good for both ends of a channel. */
    public static X509Bundle daemon(String name, X509Bundle ca) throws Exception {
        return daemon(new CertificateBuilder().ecp256(), name, ca);
    }

    /** The same with an RSA key. */
    public static X509Bundle rsaDaemon(String name, X509Bundle ca) throws Exception {
        return daemon(new CertificateBuilder().rsa2048(), name, ca);
    }

    private static X509Bundle daemon(CertificateBuilder builder, String name, X509Bundle ca) throws Exception {
        return builder.subject("CN=" + name).addSanIpAddress("127.0.0.1").addExtendedKeyUsageServerAuth()
                .addExtendedKeyUsageClientAuth().buildIssuedBy(ca);
    }

    /** A directory as {@code --tls-dir} reads it: {@code ca.pem}, {@code cert.pem} and {@code key.pem} (PKCS#8). */
    public static Path directory(Path dir, X509Bundle ca, X509Bundle identity) throws Exception {
        return directory(dir, ca, identity, identity.getPrivateKeyPEM());
    }

    public static Path directory(Path dir, X509Bundle ca, X509Bundle identity, String keyPem) throws Exception {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("ca.pem"), ca.getCertificatePEM(), StandardCharsets.US_ASCII);
        Files.writeString(dir.resolve("cert.pem"), identity.getCertificatePathPEM(), StandardCharsets.US_ASCII);
        Files.writeString(dir.resolve("key.pem"), keyPem, StandardCharsets.US_ASCII);
        return dir;
    }

    /**
     * An RSA key as PKCS#1 PEM ({@code BEGIN RSA PRIVATE KEY}), the format {@code openssl genrsa} wrote
     * before OpenSSL 3: the RSAPrivateKey inside the key's PKCS#8 encoding, which is
     * {@code SEQUENCE {INTEGER version, SEQUENCE algorithm, OCTET STRING rsaPrivateKey}}.
     */
    public static String pkcs1Pem(PrivateKey rsa) {
        ByteBuffer der = ByteBuffer.wrap(rsa.getEncoded());
        expect(der, 0x30);
        length(der);
        expect(der, 0x02);
        skip(der);
        expect(der, 0x30);
        skip(der);
        expect(der, 0x04);
        byte[] pkcs1 = new byte[length(der)];
        der.get(pkcs1);
        return "-----BEGIN RSA PRIVATE KEY-----\n" + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
                .encodeToString(pkcs1) + "\n-----END RSA PRIVATE KEY-----\n";
    }

    private static void expect(ByteBuffer der, int tag) {
        int actual = der.get() & 0xff;
        if (actual != tag) {
            throw new IllegalArgumentException(String.format("DER tag 0x%02x where 0x%02x was expected", actual, tag));
        }
    }

    private static void skip(ByteBuffer der) {
        int length = length(der);
        der.position(der.position() + length);
    }

    private static int length(ByteBuffer der) {
        int first = der.get() & 0xff;
        if (first < 0x80) {
            return first;
        }
        int length = 0;
        for (int i = 0; i < (first & 0x7f); i++) {
            length = (length << 8) | (der.get() & 0xff);
        }
        return length;
    }
}
