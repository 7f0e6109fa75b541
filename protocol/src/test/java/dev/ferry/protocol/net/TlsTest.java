package dev.ferry.protocol.net;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.SessionId;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Mutual TLS in front of every channel, from {@code ca.pem}, {@code cert.pem} and {@code key.pem}. */
class TlsTest {
    private static X509Bundle ca;
    private static X509Bundle server;
    private static X509Bundle client;

    @TempDir
    Path dir;
    private Loopback loopback;

    @BeforeAll
    static void certificates() throws Exception {
        ca = new CertificateBuilder().subject("CN=Ferry test CA").setIsCertificateAuthority(true).ecp256().buildSelfSigned();
        server = new CertificateBuilder().subject("CN=destination").addSanIpAddress("127.0.0.1").ecp256()
                .addExtendedKeyUsageServerAuth().addExtendedKeyUsageClientAuth().buildIssuedBy(ca);
        client = new CertificateBuilder().subject("CN=source").addSanIpAddress("127.0.0.1").ecp256()
                .addExtendedKeyUsageServerAuth().addExtendedKeyUsageClientAuth().buildIssuedBy(ca);
    }

    @AfterEach
    void close() {
        if (loopback != null) {
            loopback.close();
        }
    }

    private TlsConfig fromDirectory(String name, X509Bundle identity) throws Exception {
        Path d = Files.createDirectories(dir.resolve(name));
        Files.writeString(d.resolve("ca.pem"), ca.getCertificatePEM(), StandardCharsets.US_ASCII);
        Files.writeString(d.resolve("cert.pem"), identity.getCertificatePathPEM(), StandardCharsets.US_ASCII);
        Files.writeString(d.resolve("key.pem"), identity.getPrivateKeyPEM(), StandardCharsets.US_ASCII);
        return TlsConfig.fromDirectory(d);
    }

    private static ProtocolConfig config(TlsConfig tls) {
        return ProtocolConfig.of("token".getBytes(StandardCharsets.UTF_8), tls);
    }

    @Test
    void mutualTlsOpensChannels() throws Exception {
        loopback = new Loopback(config(fromDirectory("server", server)), config(fromDirectory("client", client)), new TestAcceptor());
        FrameChannel control = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, null);
        assertThat(control.channel().pipeline().get("tls")).isNotNull();
        control.send(new Frame.VmDescription(4096, 4096, 1, new byte[0])).sync();
        control.close().sync();
    }

    @Test
    void clientWithoutACertificateIsRefused() throws Exception {
        TestAcceptor acceptor = new TestAcceptor();
        SslContext noCertificate = SslContextBuilder.forClient().trustManager(ca.getCertificate()).protocols("TLSv1.3").build();
        TlsConfig serverTls = fromDirectory("server", server);
        TlsConfig anonymous = new TlsConfig(null, noCertificate);
        loopback = new Loopback(config(serverTls), config(anonymous), acceptor);
        ProtocolException refused = loopback.refusal(SessionId.random(), ChannelRole.CONTROL, 0);
        assertThat(refused.code()).isIn(ErrorCode.AUTH_FAILED, ErrorCode.CONNECTION_LOST);
        assertThat(refused.getMessage()).containsIgnoringCase("certificate");
        assertThat(acceptor.calls.get()).isZero();
    }

    @Test
    void plainClientIsNotUnderstoodByATlsServer() throws Exception {
        TestAcceptor acceptor = new TestAcceptor();
        loopback = new Loopback(config(fromDirectory("server", server)), config(null), acceptor);
        ProtocolException refused = loopback.refusal(SessionId.random(), ChannelRole.CONTROL, 0);
        assertThat(refused.code()).isIn(ErrorCode.CONNECTION_LOST, ErrorCode.UNKNOWN_TYPE, ErrorCode.AUTH_FAILED);
        assertThat(acceptor.calls.get()).isZero();
    }

    @Test
    void serverCertificateMustNameTheHostDialled() throws Exception {
        TestAcceptor acceptor = new TestAcceptor();
        loopback = new Loopback(config(fromDirectory("server", server)), config(fromDirectory("client", client)), acceptor);
        // The certificate names 127.0.0.1 only; dialling the same listener as "localhost" must fail verification.
        InetSocketAddress localhost = new InetSocketAddress("localhost", loopback.address.getPort());
        assertThat(localhost.getAddress().getHostAddress()).isEqualTo("127.0.0.1");
        try {
            loopback.client.connect(localhost, SessionId.random(), ChannelRole.CONTROL, 0, null).get(30, TimeUnit.SECONDS);
            throw new AssertionError("a certificate for 127.0.0.1 was accepted for 'localhost'");
        } catch (ExecutionException e) {
            assertThat(((ProtocolException) e.getCause()).code()).isEqualTo(ErrorCode.AUTH_FAILED);
        }
        assertThat(acceptor.calls.get()).isZero();
    }
}
