package dev.ferry.orchestrator.transport;

import dev.ferry.orchestrator.Managed;
import dev.ferry.orchestrator.config.Endpoint;
import dev.ferry.protocol.net.ProtocolConfig;
import dev.ferry.protocol.net.ProtocolServer;
import dev.ferry.protocol.net.SessionAcceptor;
import io.netty.channel.EventLoopGroup;
import java.net.InetSocketAddress;

/** The migration listener: the protocol's server on the configured address, sessions to the migration manager. */
public final class MigrationTransport implements Managed {
    private final Endpoint endpoint;
    private final ProtocolServer server;
    private volatile InetSocketAddress bound;

    public MigrationTransport(Endpoint endpoint, ProtocolConfig protocol, EventLoopGroup group, SessionAcceptor sessions) {
        this.endpoint = endpoint;
        this.server = new ProtocolServer(protocol, group, sessions);
    }

    @Override
    public void start() throws InterruptedException {
        bound = server.bind(endpoint.resolve());
    }

    /** Closes the listener and every migration connection to it. */
    @Override
    public void stop() {
        server.close();
    }

    public InetSocketAddress address() {
        return bound;
    }
}
