package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DeviceKind;
import dev.ferry.device.P2pPolicy;
import dev.ferry.device.vm.InitialMemory;
import dev.ferry.device.vm.VmConfig;
import dev.ferry.device.vm.WorkloadConfig;
import dev.ferry.orchestrator.Refusal;
import dev.ferry.orchestrator.TestDaemons;
import dev.ferry.orchestrator.api.Requests;
import dev.ferry.orchestrator.config.FerrydConfig;
import dev.ferry.orchestrator.metrics.FerryMetrics;
import dev.ferry.orchestrator.vm.ManagedVm;
import dev.ferry.orchestrator.vm.VmManager;
import dev.ferry.orchestrator.vm.VmState;
import dev.ferry.protocol.net.ProtocolClient;
import dev.ferry.protocol.net.ProtocolConfig;
import dev.ferry.protocol.net.Transport;
import io.netty.channel.EventLoopGroup;
import java.net.ServerSocket;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Starting a migration while the daemon stops: either the start is refused, or the migration runs and
 * is stopped like any other. No VM is ever left handed to a migration that will not run.
 */
class MigrationManagerStopTest {
    private static final int ROUNDS = 20;

    @Test
    void aStartRacingAStopNeverLeavesAVmMigrating() throws Exception {
        FerrydConfig config = TestDaemons.base();
        EventLoopGroup group = Transport.newGroup(1, "test-stop");
        // A destination that takes connections and says nothing: every migration waits in its handshake.
        try (ServerSocket silent = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
             FerryMetrics metrics = new FerryMetrics("test")) {
            ProtocolClient client = new ProtocolClient(ProtocolConfig.of(new byte[0], null), group);
            String destination = "127.0.0.1:" + silent.getLocalPort();
            for (int round = 0; round < ROUNDS; round++) {
                VmManager vms = new VmManager(config, metrics);
                ManagedVm vm = vms.create(new VmConfig("vm" + round, 1L << 20, 1, InitialMemory.ZERO, WorkloadConfig.IDLE,
                        P2pPolicy.AUTO, List.of(DeviceConfig.of("serial0", DeviceKind.SERIAL))), false);
                MigrationManager migrations = new MigrationManager(config, vms, client, metrics, FlowHooks.NONE, () -> "test",
                        dev.ferry.orchestrator.capture.Captures.none());
                migrations.start();
                CountDownLatch go = new CountDownLatch(1);
                CompletableFuture<Void> starting = CompletableFuture.runAsync(() -> {
                    try {
                        go.await();
                        migrations.start(MigrationPolicy.from(new Requests.StartMigration(vm.id(), destination, null, null, null,
                                null, null, null, null, null, null, null, null)));
                    } catch (Refusal refused) {
                        assertThat(refused.code()).isIn("shutting_down", "migration_in_progress");
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                });
                go.countDown();
                migrations.stop();
                starting.get(30, TimeUnit.SECONDS);
                assertThat(vm.state()).as("round %d", round).isEqualTo(VmState.PAUSED);
                assertThat(vm.migrationId()).isNull();
                vms.stop();
            }
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }
}
