package dev.ferry.orchestrator.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * QEMU's own live migration of the same memory, for the comparison the design asks for: two
 * {@code qemu-system-x86_64} processes on loopback (TCG, no guest code runs), the source's RAM backed
 * by a file that holds the benchmark's random memory, the VM paused ({@code -S}) as the paused VM
 * ferryd migrates is, driven over QMP; with more than one channel, QEMU's multifd. The figure is
 * QEMU's own {@code total-time}, setup included, as ferryd's {@code totalTimeMs} is.
 *
 * <p>Both QEMUs preallocate their RAM at start ({@code prealloc=on}, what {@code -mem-prealloc} does),
 * before the migration is asked for, as ferryd's source holds its VM's memory and its destination
 * receives into memory its pool holds: neither side's time is the first touch of fresh memory. (That
 * did not make QEMU fast on 2026-12-02: it took 2.9 to 5.9 s for 1 GiB, and its source alone, migrating
 * to {@code cat > /dev/null}, 5.2 s, against 0.37 to 0.42 s for the whole migration on earlier days.)
 */
final class QemuMigration {
    static final String BINARY = "qemu-system-x86_64";
    private static final ObjectMapper JSON = new ObjectMapper();

    private QemuMigration() {
    }

    /** The QEMU version line, or null when QEMU is not installed. */
    static String version() {
        try {
            Process process = new ProcessBuilder(BINARY, "--version").redirectErrorStream(true).start();
            String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            return process.waitFor(30, TimeUnit.SECONDS) && process.exitValue() == 0 ? output.lines().findFirst().orElse("") : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /** One migration of {@code memoryBytes} whose content is {@code ram}; QEMU's total time in ms. */
    static long migrate(Path ram, long memoryBytes, int channels, Path dir) throws Exception {
        Path sourceSocket = dir.resolve("qemu-source.qmp");
        Path destinationSocket = dir.resolve("qemu-destination.qmp");
        Files.deleteIfExists(sourceSocket);
        Files.deleteIfExists(destinationSocket);
        String size = (memoryBytes >> 20) + "M";
        Process source = start(dir.resolve("qemu-source.log"), size, "memory-backend-file,id=mem,size=" + size + ",mem-path=" + ram
                + ",share=on,prealloc=on", sourceSocket, List.of());
        Process destination = null;
        try {
            destination = start(dir.resolve("qemu-destination.log"), size,
                    "memory-backend-ram,id=mem,size=" + size + ",prealloc=on",
                    destinationSocket, List.of("-incoming", "defer"));
            int port = freePort();
            String uri = "tcp:127.0.0.1:" + port;
            try (Qmp from = Qmp.connect(sourceSocket, source); Qmp to = Qmp.connect(destinationSocket, destination)) {
                if (channels > 1) {
                    for (Qmp qmp : List.of(from, to)) {
                        qmp.execute("migrate-set-capabilities", Map.of("capabilities",
                                List.of(Map.of("capability", "multifd", "state", true))));
                        qmp.execute("migrate-set-parameters", Map.of("multifd-channels", channels));
                    }
                }
                from.execute("migrate-set-parameters", Map.of("max-bandwidth", 1L << 40));
                to.execute("migrate-incoming", Map.of("uri", uri));
                from.execute("migrate", Map.of("uri", uri));
                long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
                int completedWithoutTime = 0;
                while (System.nanoTime() < deadline) {
                    JsonNode status = from.execute("query-migrate", Map.of());
                    String state = status.path("status").asText();
                    if (state.equals("completed")) {
                        long total = status.path("total-time").asLong();
                        if (total > 0) {
                            return total;
                        }
                        // Seen once in a run: "completed" before its total-time was filled in. Asked again, briefly.
                        if (++completedWithoutTime > 50) {
                            throw new IOException("QEMU's migration completed without a total-time: " + status);
                        }
                    }
                    if (state.equals("failed") || state.equals("cancelled")) {
                        throw new IOException("QEMU's migration " + state + ": " + status);
                    }
                    TimeUnit.MILLISECONDS.sleep(20);
                }
                throw new IOException("QEMU's migration did not end within 5 minutes");
            }
        } finally {
            stop(source);
            if (destination != null) {
                stop(destination);
            }
        }
    }

    private static Process start(Path log, String size, String backend, Path qmp, List<String> extra) throws IOException {
        List<String> command = new ArrayList<>(List.of(BINARY, "-machine", "pc,accel=tcg,memory-backend=mem", "-nodefaults",
                "-display", "none", "-m", size, "-S", "-object", backend, "-qmp", "unix:" + qmp + ",server=on,wait=off"));
        command.addAll(extra);
        return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    private static void stop(Process process) throws InterruptedException {
        process.destroy();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    /** A QMP connection: one JSON object per line; events are passed over. */
    private static final class Qmp implements AutoCloseable {
        private final SocketChannel channel;
        private final BufferedReader in;
        private final OutputStream out;

        private Qmp(SocketChannel channel) {
            this.channel = channel;
            this.in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
            this.out = Channels.newOutputStream(channel);
        }

        /** Connects once QEMU has created its socket, and negotiates capabilities. */
        static Qmp connect(Path socket, Process qemu) throws Exception {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (true) {
                if (!qemu.isAlive()) {
                    throw new IOException("QEMU exited with status " + qemu.exitValue() + " before its QMP socket opened");
                }
                if (Files.exists(socket)) {
                    SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
                    try {
                        channel.connect(UnixDomainSocketAddress.of(socket));
                        Qmp qmp = new Qmp(channel);
                        qmp.read();
                        qmp.execute("qmp_capabilities", Map.of());
                        return qmp;
                    } catch (IOException e) {
                        channel.close();
                        if (System.nanoTime() > deadline) {
                            throw e;
                        }
                    }
                } else if (System.nanoTime() > deadline) {
                    throw new IOException("QEMU did not open " + socket);
                }
                TimeUnit.MILLISECONDS.sleep(20);
            }
        }

        JsonNode execute(String command, Map<String, ?> arguments) throws IOException {
            ObjectNode request = JSON.createObjectNode().put("execute", command);
            if (!arguments.isEmpty()) {
                request.set("arguments", JSON.valueToTree(arguments));
            }
            out.write((JSON.writeValueAsString(request) + "\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
            while (true) {
                JsonNode reply = read();
                if (reply.has("error")) {
                    throw new IOException("QMP " + command + ": " + reply.path("error"));
                }
                if (reply.has("return")) {
                    return reply.path("return");
                }
            }
        }

        private JsonNode read() throws IOException {
            String line = in.readLine();
            if (line == null) {
                throw new IOException("QEMU closed its QMP socket");
            }
            return JSON.readTree(line);
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }
}
