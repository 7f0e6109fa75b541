package dev.ferry.orchestrator.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.orchestrator.TestTls;
import io.netty.pkitesting.X509Bundle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigLoaderTest {
    @TempDir
    Path dir;

    @Test
    void defaultsAreLoopbackWithoutToken() throws Exception {
        FerrydConfig config = ConfigLoader.load(List.of());
        assertThat(config.http()).isEqualTo(new Endpoint("127.0.0.1", 7070));
        assertThat(config.migration()).isEqualTo(new Endpoint("127.0.0.1", 7071));
        assertThat(config.hasToken()).isFalse();
        assertThat(config.tlsDir()).isNull();
        assertThat(config.memoryPoolBytes()).isEqualTo(1L << 30);
        assertThat(config.maxTotalMemoryBytes()).as("as much as the JVM holds").isZero();
    }

    @Test
    void memorySettingsFromTheFileAndTheFlag() throws Exception {
        Path file = Files.writeString(dir.resolve("memory.yaml"), """
                memoryPoolBytes: 0
                maxTotalMemoryBytes: 8589934592
                """);
        FerrydConfig fromFile = ConfigLoader.load(List.of("--config", file.toString()));
        assertThat(fromFile.memoryPoolBytes()).isZero();
        assertThat(fromFile.maxTotalMemoryBytes()).isEqualTo(8L << 30);
        FerrydConfig flagWins = ConfigLoader.load(List.of("--config", file.toString(), "--memory-pool-bytes", "4194304"));
        assertThat(flagWins.memoryPoolBytes()).isEqualTo(4L << 20);
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--memory-pool-bytes", "lots")))
                .hasMessageContaining("--memory-pool-bytes needs a whole number of bytes");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--memory-pool-bytes", "-1")))
                .hasMessageContaining("memoryPoolBytes must not be negative");
        assertThat(fromFile.memoryPoolPrefill()).as("off by default").isFalse();
        assertThat(ConfigLoader.load(List.of("--memory-pool-prefill")).memoryPoolPrefill()).isTrue();
        Path prefill = Files.writeString(dir.resolve("prefill.yaml"), "memoryPoolPrefill: true\n");
        assertThat(ConfigLoader.load(List.of("--config", prefill.toString())).memoryPoolPrefill()).isTrue();
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--memory-pool-prefill", "--memory-pool-bytes", "0")))
                .hasMessageContaining("memoryPoolPrefill needs a pool to fill");
    }

    @Test
    void aCaptureDirectoryMustExistAndTakeFilesAndIsOffWithoutOne() throws Exception {
        assertThat(ConfigLoader.load(List.of()).captureDir()).as("capture is off by default").isNull();
        Path captures = Files.createDirectory(dir.resolve("captures"));
        assertThat(ConfigLoader.load(List.of("--capture-dir", captures.toString())).captureDir()).isEqualTo(captures.toAbsolutePath());
        Path file = Files.writeString(dir.resolve("ferryd.yaml"), "captureDir: " + captures + "\n");
        assertThat(ConfigLoader.load(List.of("--config", file.toString())).captureDir()).isEqualTo(captures.toAbsolutePath());
        try (var left = Files.list(captures)) {
            assertThat(left).as("the probe file is gone").isEmpty();
        }

        Path missing = dir.resolve("nowhere");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--capture-dir", missing.toString())))
                .hasMessage("--capture-dir: " + missing + " does not exist");
        Path notADirectory = Files.writeString(dir.resolve("plain"), "x");
        Path inFile = Files.writeString(dir.resolve("other.yaml"), "captureDir: " + notADirectory + "\n");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--config", inFile.toString())))
                .hasMessage("captureDir: " + notADirectory + " is not a directory");
    }

    @Test
    void flagsWinOverTheFileAndTheFileOverDefaults() throws Exception {
        Path token = Files.writeString(dir.resolve("token"), "  s3cret\n");
        Path file = Files.writeString(dir.resolve("ferryd.json"), """
                {"http": "127.0.0.1:9000", "migration": "127.0.0.1:9001", "tokenFile": "%s", "maxVms": 3}
                """.formatted(token.toString().replace("\\", "\\\\")));
        FerrydConfig config = ConfigLoader.load(List.of("--config", file.toString(), "--http", "127.0.0.1:0"));
        assertThat(config.http()).isEqualTo(new Endpoint("127.0.0.1", 0));
        assertThat(config.migration()).isEqualTo(new Endpoint("127.0.0.1", 9001));
        assertThat(new String(config.token(), StandardCharsets.UTF_8)).isEqualTo("s3cret");
        assertThat(config.maxVms()).isEqualTo(3);
    }

    @Test
    void yamlFilesReadTheSame() throws Exception {
        Path file = Files.writeString(dir.resolve("ferryd.yaml"), """
                http: "[::1]:0"
                migration: 127.0.0.1:0
                migrationHistory: 5
                """);
        FerrydConfig config = ConfigLoader.load(List.of("--config", file.toString()));
        assertThat(config.http()).isEqualTo(new Endpoint("::1", 0));
        assertThat(config.http().toString()).isEqualTo("[::1]:0");
        assertThat(config.migrationHistory()).isEqualTo(5);
    }

    @Test
    void unknownKeysWrongTypesAndBadFlagsAreErrors() throws Exception {
        Path unknown = Files.writeString(dir.resolve("a.json"), "{\"htpp\": \"127.0.0.1:1\"}");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--config", unknown.toString())))
                .hasMessageContaining("unknown field 'htpp'");
        Path wrongType = Files.writeString(dir.resolve("b.yaml"), "maxVms: many\n");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--config", wrongType.toString()))).hasMessageContaining("maxVms");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--port", "1"))).hasMessage("unknown option --port");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--http"))).hasMessageContaining("Missing required parameter for option '--http'");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--http", "7070"))).hasMessageContaining("HOST:PORT");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--token-file", dir.resolve("missing").toString())))
                .hasMessageContaining("cannot read token file");
        Path empty = Files.writeString(dir.resolve("empty-token"), "\n");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--token-file", empty.toString()))).hasMessageContaining("is empty");
    }

    @Test
    void nonLoopbackWithoutTokenIsRefusedUnlessInsecure() throws Exception {
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--http", "0.0.0.0:7070")))
                .hasMessageContaining("refusing to listen on 0.0.0.0:7070 without a token");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--migration", "0.0.0.0:7071")))
                .hasMessageContaining("0.0.0.0:7071");
        assertThat(ConfigLoader.load(List.of("--http", "0.0.0.0:7070", "--insecure")).insecure()).isTrue();
        Path token = Files.writeString(dir.resolve("t"), "abc");
        assertThat(ConfigLoader.load(List.of("--http", "0.0.0.0:7070", "--token-file", token.toString())).hasToken()).isTrue();
    }

    @Test
    void theTlsDirectoryIsReadAtStartAndEachFaultIsOneLineSayingWhatToFix() throws Exception {
        X509Bundle ca = TestTls.ca("Ferry CA");
        X509Bundle rsa = TestTls.rsaDaemon("ferryd", ca);
        Path good = TestTls.directory(dir.resolve("good"), ca, rsa);
        assertThat(ConfigLoader.load(List.of("--tls-dir", good.toString())).tlsDir()).isEqualTo(good);

        Path missing = dir.resolve("missing");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--tls-dir", missing.toString())))
                .isInstanceOf(ConfigLoader.ConfigException.class)
                .hasMessage("--tls-dir: TLS directory " + missing + " does not exist");

        Path noKey = TestTls.directory(dir.resolve("no-key"), ca, rsa);
        Files.delete(noKey.resolve("key.pem"));
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--tls-dir", noKey.toString())))
                .hasMessage("--tls-dir: TLS file " + noKey.resolve("key.pem") + " is missing");

        Path pkcs1 = TestTls.directory(dir.resolve("pkcs1"), ca, rsa, TestTls.pkcs1Pem(rsa.getKeyPair().getPrivate()));
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--tls-dir", pkcs1.toString())))
                .isInstanceOf(ConfigLoader.ConfigException.class)
                .hasMessageStartingWith("--tls-dir: TLS key " + pkcs1.resolve("key.pem") + " is a PKCS#1 RSA key")
                .hasMessageContaining("openssl pkcs8 -topk8 -nocrypt -in " + pkcs1.resolve("key.pem"))
                .hasMessageNotContaining("\n");

        Path notACertificate = TestTls.directory(dir.resolve("swapped"), ca, rsa);
        Files.writeString(notACertificate.resolve("cert.pem"), rsa.getPrivateKeyPEM());
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--tls-dir", notACertificate.toString())))
                .hasMessageContaining("cert.pem holds no PEM certificate");

        // The config file's key is named as such.
        Path file = Files.writeString(dir.resolve("tls.yaml"), "tlsDir: " + missing + "\n");
        assertThatThrownBy(() -> ConfigLoader.load(List.of("--config", file.toString())))
                .hasMessage("tlsDir: TLS directory " + missing + " does not exist");
    }

    @Test
    void theKeyFixtureIsARealPkcs1Key() throws Exception {
        // What the test above feeds the loader is what openssl genrsa -traditional writes: the JDK's RSA
        // key factory cannot read it as PKCS#8, and its body is the key's own RSAPrivateKey structure.
        X509Bundle rsa = TestTls.rsaDaemon("ferryd", TestTls.ca("Ferry CA"));
        String pem = TestTls.pkcs1Pem(rsa.getKeyPair().getPrivate());
        byte[] der = java.util.Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", ""));
        assertThatThrownBy(() -> java.security.KeyFactory.getInstance("RSA")
                .generatePrivate(new java.security.spec.PKCS8EncodedKeySpec(der)))
                .isInstanceOf(java.security.spec.InvalidKeySpecException.class);
        java.security.interfaces.RSAPrivateCrtKey key = (java.security.interfaces.RSAPrivateCrtKey) rsa.getKeyPair().getPrivate();
        byte[] modulus = key.getModulus().toByteArray();
        assertThat(java.util.Collections.indexOfSubList(bytes(der), bytes(modulus))).as("the modulus is inside").isPositive();
    }

    private static List<Byte> bytes(byte[] array) {
        List<Byte> list = new java.util.ArrayList<>(array.length);
        for (byte b : array) {
            list.add(b);
        }
        return list;
    }

    @Test
    void endpointsParseAndPrint() {
        assertThat(Endpoint.parse("[::1]:80")).isEqualTo(new Endpoint("::1", 80));
        assertThat(Endpoint.parse("localhost:0").isLoopback()).isTrue();
        assertThatThrownBy(() -> Endpoint.parse("::1:80")).hasMessageContaining("brackets");
        assertThatThrownBy(() -> Endpoint.parse("host:99999")).hasMessageContaining("port");
    }
}
