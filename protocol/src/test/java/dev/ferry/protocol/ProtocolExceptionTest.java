package dev.ferry.protocol;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import org.junit.jupiter.api.Test;

/** How a broken connection is said to users: as the operating system says it, without the transport's call or errno. */
class ProtocolExceptionTest {
    @Test
    void aBrokenConnectionIsSaidWithoutTheTransportsInternals() {
        assertThat(ProtocolException.describeBroken(new IOException("recvAddress(..) failed with error(-104): Connection reset by peer")))
                .isEqualTo("connection reset by peer");
        assertThat(ProtocolException.describeBroken(new IOException("Broken pipe"))).isEqualTo("broken pipe");
        assertThat(ProtocolException.describeBroken(new IOException())).isEqualTo("the connection broke");
    }
}
