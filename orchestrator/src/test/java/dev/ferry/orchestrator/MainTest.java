package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.inject.CreationException;
import com.google.inject.spi.Message;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** How the daemon says it could not start: one line, the failure itself. */
class MainTest {
    @Test
    void aFailureInsideTheInjectorIsItsOwnMessageWithoutTheInjectorsReport() {
        IOException tls = new IOException("TLS file /etc/ferry/key.pem is missing");
        Message report = new Message(List.of(), "[Guice/ErrorInCustomProvider]: UncheckedIOException\n  at FerrydModule.protocol",
                new UncheckedIOException("TLS: " + tls.getMessage(), tls));
        CreationException creation = new CreationException(List.of(report, report));
        assertThat(Main.reason(creation)).isEqualTo("TLS file /etc/ferry/key.pem is missing");
    }

    @Test
    void aCaptureDirectoryThatIsNotThereIsAOneLineConfigurationError(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        java.nio.file.Path missing = dir.resolve("captures");
        int status = Main.run(new String[] {"--http", "127.0.0.1:0", "--migration", "127.0.0.1:0", "--capture-dir", missing.toString()},
                new java.io.PrintStream(out, true), new java.io.PrintStream(err, true));
        assertThat(status).isEqualTo(2);
        assertThat(out.size()).isZero();
        assertThat(err.toString(java.nio.charset.StandardCharsets.UTF_8)).isEqualTo("ferryd: --capture-dir: " + missing + " does not exist"
                + System.lineSeparator());
    }

    @Test
    void wrappersThatOnlyCarryACauseAreLookedThroughAndOnlyTheFirstLineIsKept() {
        assertThat(Main.reason(new RuntimeException(new java.net.BindException("Address already in use"))))
                .isEqualTo("Address already in use");
        assertThat(Main.reason(new IllegalStateException("first line\nsecond line"))).isEqualTo("first line");
        assertThat(Main.reason(new NullPointerException())).isEqualTo("java.lang.NullPointerException");
    }
}
