package dev.ferry.protocol.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ferry.protocol.ChannelRole;
import dev.ferry.protocol.ErrorCode;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameHeader;
import dev.ferry.protocol.FrameType;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.ProtocolVersion;
import dev.ferry.protocol.SessionId;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The versioned handshake with challenge and response on the token, and what the server refuses. */
class HandshakeTest {
    private Loopback loopback;

    @AfterEach
    void close() {
        if (loopback != null) {
            loopback.close();
        }
    }

    private TestAcceptor start(ProtocolConfig server, ProtocolConfig client) throws InterruptedException {
        TestAcceptor acceptor = new TestAcceptor();
        loopback = new Loopback(server, client, acceptor);
        return acceptor;
    }

    /** A HELLO offering this build's version. */
    private static Frame.Hello hello(long magic, int role, int index) {
        return hello(magic, role, index, ProtocolVersion.MIN, ProtocolVersion.MAX);
    }

    private static Frame.Hello hello(long magic, int role, int index, int minVersion, int maxVersion) {
        return new Frame.Hello(magic, minVersion, maxVersion, role, index, SessionId.random(), TokenAuth.nonce());
    }

    private Frame.Refuse refusal(Frame... frames) throws Exception {
        try (RawPeer peer = new RawPeer(loopback.address)) {
            for (Frame frame : frames) {
                peer.send(frame);
            }
            Frame.Refuse refuse = peer.readUntil(Frame.Refuse.class);
            assertThat(refuse).as("a REFUSE frame").isNotNull();
            assertThat(peer.read()).as("then the server closes").isNull();
            return refuse;
        }
    }

    @Test
    void controlAndDataChannelsOpenAndMeasureRoundTrips() throws Exception {
        TestAcceptor acceptor = start(Loopback.config("secret"), Loopback.config("secret"));
        SessionId session = SessionId.random();
        BlockingQueue<Frame> replies = new LinkedBlockingQueue<>();
        FrameChannel control = loopback.connect(session, ChannelRole.CONTROL, 0, (ch, frame) -> replies.add(frame));
        control.send(new Frame.VmDescription(1 << 20, 4096, 2, new byte[0]));
        // Data channels join a session only once its description has been accepted.
        assertThat(replies.poll(30, TimeUnit.SECONDS)).isInstanceOf(Frame.VmAccepted.class);
        FrameChannel data0 = loopback.connect(session, ChannelRole.DATA, 0, null);
        FrameChannel data1 = loopback.connect(session, ChannelRole.DATA, 1, null);
        assertThat(acceptor.calls.get()).isEqualTo(3);
        await().atMost(Duration.ofSeconds(10)).until(() -> control.rttNanos() > 0 && data1.rttNanos() > 0);
        assertThat(control.isOpen() && data0.isOpen() && data1.isOpen()).isTrue();
        // Both ends of every channel take their buffers from the pooled migration allocator.
        TestAcceptor.Session accepted = acceptor.sessions.get(session);
        assertThat(List.of(control, data0, data1, accepted.control)).allSatisfy(ch -> assertThat(ch.channel().alloc()).isSameAs(Transport.allocator()));
        assertThat(accepted.dataChannels).hasSize(2).allSatisfy(ch -> assertThat(ch.channel().alloc()).isSameAs(Transport.allocator()));
        control.close().sync();
    }

    @Test
    void wrongMagicIsRefusedBeforeAnythingIsAllocated() throws Exception {
        TestAcceptor acceptor = start(Loopback.config("secret"), Loopback.config("secret"));
        Frame.Refuse refuse = refusal(hello(0x1234L, ChannelRole.CONTROL.code(), 0));
        assertThat(refuse.code()).isEqualTo(ErrorCode.BAD_MAGIC);
        assertThat(refuse.message()).contains("not a Ferry migration peer");
        assertThat(acceptor.calls.get()).isZero();
    }

    /** A version-1 peer (which routed device data differently, F10) is refused before anything moves. */
    @Test
    void wrongVersionIsRefusedNamingBothRanges() throws Exception {
        TestAcceptor acceptor = start(Loopback.config("secret"), Loopback.config("secret").withVersions(1, 1));
        ProtocolException refused = loopback.refusal(SessionId.random(), ChannelRole.CONTROL, 0);
        assertThat(refused.code()).isEqualTo(ErrorCode.UNSUPPORTED_VERSION);
        assertThat(refused.getMessage()).contains("versions 2..2").contains("offered 1..1");
        assertThat(acceptor.calls.get()).isZero();
    }

    @Test
    void wrongTokenFailsOnBothSides() throws Exception {
        TestAcceptor acceptor = start(Loopback.config("secret"), Loopback.config("guess"));
        // The client checks the server's proof first and will not prove itself to a stranger.
        ProtocolException refused = loopback.refusal(SessionId.random(), ChannelRole.CONTROL, 0);
        assertThat(refused.code()).isEqualTo(ErrorCode.AUTH_FAILED);
        assertThat(refused.getMessage()).contains("could not prove it holds the token");
        // A client that answers anyway is refused by the server.
        try (RawPeer peer = new RawPeer(loopback.address)) {
            peer.send(hello(Frame.MAGIC, ChannelRole.CONTROL.code(), 0));
            assertThat(peer.readUntil(Frame.Challenge.class)).isNotNull();
            peer.send(new Frame.Auth(new byte[32]));
            Frame.Refuse refuse = peer.readUntil(Frame.Refuse.class);
            assertThat(refuse.code()).isEqualTo(ErrorCode.AUTH_FAILED);
        }
        assertThat(acceptor.calls.get()).isZero();
    }

    @Test
    void theTokenNeverCrossesTheWire() throws Exception {
        String token = "a-very-recognisable-token";
        start(Loopback.config(token), Loopback.config(token));
        try (RawPeer peer = new RawPeer(loopback.address)) {
            Frame.Hello hello = hello(Frame.MAGIC, ChannelRole.CONTROL.code(), 0);
            peer.send(hello);
            Frame.Challenge challenge = peer.readUntil(Frame.Challenge.class);
            String everything = new String(challenge.nonce(), StandardCharsets.ISO_8859_1)
                    + new String(challenge.proof(), StandardCharsets.ISO_8859_1);
            assertThat(everything).doesNotContain(token);
            TokenAuth auth = new TokenAuth(token.getBytes(StandardCharsets.UTF_8));
            assertThat(challenge.proof()).isEqualTo(auth.serverProof(hello, challenge.version(), challenge.nonce()));
            peer.send(new Frame.Auth(auth.clientProof(hello, challenge.version(), challenge.nonce())));
            assertThat(peer.readUntil(Frame.Accept.class)).isNotNull();
        }
    }

    @Test
    void wrongRoleIsRefused() throws Exception {
        TestAcceptor acceptor = start(Loopback.config(""), Loopback.config(""));
        assertThat(refusal(hello(Frame.MAGIC, 7, 0)).code()).isEqualTo(ErrorCode.BAD_ROLE);
        assertThat(refusal(hello(Frame.MAGIC, ChannelRole.CONTROL.code(), 1)).code()).isEqualTo(ErrorCode.BAD_ROLE);
        assertThat(refusal(hello(Frame.MAGIC, ChannelRole.DATA.code(), 200)).code()).isEqualTo(ErrorCode.BAD_ROLE);
        assertThat(acceptor.calls.get()).isZero();
    }

    @Test
    void dataChannelOfAnUnknownSessionIsRefused() throws Exception {
        start(Loopback.config(""), Loopback.config(""));
        ProtocolException refused = loopback.refusal(SessionId.random(), ChannelRole.DATA, 0);
        assertThat(refused.code()).isEqualTo(ErrorCode.UNKNOWN_SESSION);
    }

    @Test
    void framesOtherThanTheHandshakeAreRefused() throws Exception {
        start(Loopback.config(""), Loopback.config(""));
        assertThat(refusal(new Frame.Commit()).code()).isEqualTo(ErrorCode.OUT_OF_ORDER);
    }

    /** The 16 bytes of a frame header announcing a payload that never comes. */
    private static byte[] headerOnly(FrameType type, int length, int sequence) {
        return java.nio.ByteBuffer.allocate(FrameHeader.BYTES).putInt(length).put((byte) type.code()).put((byte) 0)
                .putShort((short) 0).putInt(sequence).putInt(0).array();
    }

    @Test
    void aSessionFrameBeforeTheHandshakeIsRefusedOnItsHeaderWithoutWaitingForItsPayload() throws Exception {
        // A handshake timeout far beyond the test's reads: a refusal as out_of_order cannot be the timeout's.
        ProtocolConfig server = Loopback.config("t").withLimits(Limits.DEFAULT.withHandshakeTimeout(Duration.ofMinutes(5)));
        TestAcceptor acceptor = start(server, Loopback.config("t"));
        try (RawPeer peer = new RawPeer(loopback.address)) {
            peer.sendBytes(headerOnly(FrameType.PAGES, Frame.Pages.MAX_PAYLOAD_BYTES, 0));
            Frame.Refuse refuse = peer.readUntil(Frame.Refuse.class);
            assertThat(refuse.code()).isEqualTo(ErrorCode.OUT_OF_ORDER);
            assertThat(refuse.message()).contains("PAGES").contains("[HELLO]");
            assertThat(peer.read()).as("then the server closes").isNull();
        }
        // After HELLO only AUTH may come.
        try (RawPeer peer = new RawPeer(loopback.address)) {
            peer.send(hello(Frame.MAGIC, ChannelRole.CONTROL.code(), 0));
            assertThat(peer.readUntil(Frame.Challenge.class)).isNotNull();
            peer.sendBytes(headerOnly(FrameType.DEVICE_DATA, 10 + Frame.DeviceData.MAX_CHUNK_BYTES, 1));
            Frame.Refuse refuse = peer.readUntil(Frame.Refuse.class);
            assertThat(refuse.code()).isEqualTo(ErrorCode.OUT_OF_ORDER);
            assertThat(refuse.message()).contains("DEVICE_DATA").contains("[AUTH]");
        }
        assertThat(acceptor.calls.get()).isZero();
    }

    @Test
    void slowPeerIsDroppedAtTheHandshakeTimeout() throws Exception {
        ProtocolConfig server = Loopback.config("").withLimits(Limits.DEFAULT.withHandshakeTimeout(Duration.ofMillis(300)));
        TestAcceptor acceptor = start(server, Loopback.config(""));
        try (RawPeer peer = new RawPeer(loopback.address)) {
            byte[] partial = new byte[5];
            peer.sendBytes(partial);
            Frame.Refuse refuse = peer.readUntil(Frame.Refuse.class);
            assertThat(refuse.code()).isEqualTo(ErrorCode.TIMEOUT);
        }
        assertThat(acceptor.calls.get()).isZero();
    }

    @Test
    void silentPeerIsDroppedAtTheKeepaliveTimeout() throws Exception {
        ProtocolConfig server = Loopback.config("t").withLimits(
                Limits.DEFAULT.withKeepalive(Duration.ofMillis(50), Duration.ofMillis(400)));
        start(server, Loopback.config("t"));
        try (RawPeer peer = new RawPeer(loopback.address)) {
            TokenAuth auth = new TokenAuth("t".getBytes(StandardCharsets.UTF_8));
            Frame.Hello hello = hello(Frame.MAGIC, ChannelRole.CONTROL.code(), 0);
            peer.send(hello);
            Frame.Challenge challenge = peer.readUntil(Frame.Challenge.class);
            peer.send(new Frame.Auth(auth.clientProof(hello, challenge.version(), challenge.nonce())));
            assertThat(peer.readUntil(Frame.Accept.class)).isNotNull();
            Frame.Abort abort = peer.readUntil(Frame.Abort.class);
            assertThat(abort.code()).isEqualTo(ErrorCode.TIMEOUT);
            assertThat(abort.message()).contains("nothing from the peer");
        }
    }

    @Test
    void aPeerThatAnswersInHttpIsNamedAsNoMigrationListener() throws Exception {
        start(Loopback.config("secret"), Loopback.config("secret"));
        // An HTTP server, as a daemon's API port is: whatever it is sent, it answers with an HTTP response.
        try (ServerSocket http = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            Thread server = new Thread(() -> {
                try (Socket socket = http.accept()) {
                    // Bounded: the client closes once it has failed, and the test goes on after its join anyway.
                    socket.setSoTimeout((int) TimeUnit.SECONDS.toMillis(30));
                    socket.getInputStream().read(new byte[256]);
                    socket.getOutputStream().write("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                    socket.getInputStream().read(new byte[256]);
                } catch (IOException e) {
                    // The client closed first: all the test needs was the response.
                }
            }, "test-http-peer");
            server.start();
            CompletableFuture<FrameChannel> attempt = loopback.client.connect(
                    new InetSocketAddress("127.0.0.1", http.getLocalPort()), SessionId.random(), ChannelRole.CONTROL, 0, null);
            ExecutionException failed = assertThrows(
                    ExecutionException.class, () -> attempt.get(30, TimeUnit.SECONDS));
            ProtocolException cause = (ProtocolException) failed.getCause();
            assertThat(cause.code()).isEqualTo(ErrorCode.UNKNOWN_TYPE);
            assertThat(cause.getMessage()).contains("does not speak the migration protocol", "unknown frame type 0x2f",
                    "HTTP address rather than its --migration listener");
            server.join(TimeUnit.SECONDS.toMillis(30));
        }
    }

    @Test
    void garbageOnThePortIsRefusedAndTheServerKeepsServing() throws Exception {
        start(Loopback.config("s"), Loopback.config("s"));
        SplittableRandom random = new SplittableRandom(3);
        for (int round = 0; round < 5; round++) {
            try (RawPeer peer = new RawPeer(loopback.address)) {
                byte[] garbage = new byte[64 + random.nextInt(1000)];
                random.nextBytes(garbage);
                garbage[4] = (byte) 0xee;
                peer.sendBytes(garbage);
                Frame.Refuse refuse = peer.readUntil(Frame.Refuse.class);
                assertThat(refuse.code()).isEqualTo(ErrorCode.UNKNOWN_TYPE);
            }
        }
        FrameChannel fine = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, null);
        assertThat(fine.isOpen()).isTrue();
        fine.close().sync();
    }

    @Test
    void connectionsBeyondTheLimitAreRefusedAsBusy() throws Exception {
        start(Loopback.config("").withLimits(Limits.DEFAULT.withMaxConnections(2)), Loopback.config(""));
        FrameChannel first = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, null);
        FrameChannel second = loopback.connect(SessionId.random(), ChannelRole.CONTROL, 0, null);
        ProtocolException refused = loopback.refusal(SessionId.random(), ChannelRole.CONTROL, 0);
        assertThat(refused.code()).isEqualTo(ErrorCode.BUSY);
        first.close().sync();
        second.close().sync();
    }

    @Test
    void refusalsAreLoggedAtMostTenTimesAnIntervalWithACountOfTheRest() throws Exception {
        List<String> lines = new CopyOnWriteArrayList<>();
        AtomicLong clock = new AtomicLong();
        RateLimitedLog log = new RateLimitedLog(lines::add, 10, Duration.ofSeconds(10), clock::get);
        loopback = new Loopback(Loopback.config("s"), Loopback.config("s"), new TestAcceptor(), log);
        // The line is logged before the REFUSE is written, so it is there once the peer has read it.
        for (int i = 0; i < 50; i++) {
            assertThat(refusal(hello(0x1234L, ChannelRole.CONTROL.code(), 0)).code()).isEqualTo(ErrorCode.BAD_MAGIC);
        }
        assertThat(lines).hasSize(10).allMatch(line -> line.startsWith("refused migration channel from /127.0.0.1:")
                && line.contains("bad_magic"));
        assertThat(log.suppressedTotal()).isEqualTo(40);
        clock.addAndGet(Duration.ofSeconds(10).toNanos());
        assertThat(refusal(new Frame.Commit()).code()).isEqualTo(ErrorCode.OUT_OF_ORDER);
        assertThat(lines).hasSize(11).last().asString().contains("out_of_order").endsWith("(40 similar lines not logged before this one)");
    }
}
