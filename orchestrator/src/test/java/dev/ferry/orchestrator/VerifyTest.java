package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.device.memory.GuestMemory;
import dev.ferry.orchestrator.faults.FaultInjector;
import dev.ferry.orchestrator.migration.DestinationPhase;
import dev.ferry.orchestrator.vm.VmManager;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/**
 * Verify at the cost of what changed: both sides keep the frozen-point digest up to date while data
 * moves (the source after each pass, the destination after applying each iteration and while the last
 * one lands), so the digest
 * taken at the frozen point hashes only what the last pass changed; yet a byte that differs anywhere
 * still fails the migration before the commit, and the source runs on (F4).
 */
class VerifyTest {
    private static final long MEMORY = 32L << 20;

    @AutoClose
    private final TestDaemons daemons = TestDaemons.started();

    @Test
    void theFrozenPointDigestHashesOnlyWhatTheLastPassChanged() throws Exception {
        daemons.sourceApi.post("/v1/vms", TestDaemons.vm("vm1", true, 1L << 20, 50, TestDaemons.p2pDevices()));
        String id = daemons.migrate("vm1", Map.of("verify", true, "channels", 2)).path("id").asText();
        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).as(end.toString()).isEqualTo("completed");
        assertThat(end.path("verified").asBoolean()).isTrue();
        JsonNode destination = daemons.awaitDestinationEnd(id);
        for (JsonNode side : new JsonNode[] {end, destination}) {
            assertThat(side.path("verifyMs").isNumber()).as("%s", side.path("role")).isTrue();
            System.out.printf("verify on the %s: %d bytes hashed at the frozen point in %.2f ms%n", side.path("role").asText(),
                    side.path("verifyBytes").asLong(), side.path("verifyMs").asDouble());
            // The whole VM is 32 MiB of memory and 5 MiB of device memory; at 1 MiB/s the last pass is a
            // small part of it. Hashing it all again would be the old cost of verify.
            assertThat(side.path("verifyBytes").asLong()).as("%s hashed at the frozen point", side.path("role"))
                    .isLessThan(MEMORY / 4);
        }
        assertThat(daemons.destinationApi.get("/v1/vms/vm1").path("state").asText()).isEqualTo("running");
    }

    @Test
    void aByteChangedOnTheDestinationAfterItsLastRefreshFailsVerifyAndTheSourceRunsOn() throws Exception {
        JsonNode digest = daemons.pausedVm("vm1");
        // Every device loaded, before the destination digests its copy.
        FaultInjector.Hold hold = daemons.destinationFaults().holdAt(DestinationPhase.P2P_GRACE);
        String id = daemons.migrate("vm1", Map.of("verify", true)).path("id").asText();
        assertThat(hold.awaitReached(30, TimeUnit.SECONDS)).isTrue();
        GuestMemory copy = daemons.destination.get(VmManager.class).get("vm1").vm().memory();
        long address = 7 * 4096 + 123;
        byte[] one = new byte[1];
        copy.read(address, one, 0, 1);
        one[0] ^= 0x01;
        copy.vcpuWrite(address, one, 0, 1);
        hold.release();

        JsonNode end = daemons.awaitEnd(id);
        assertThat(end.path("phase").asText()).isEqualTo("failed");
        assertThat(end.path("error").path("code").asText()).isEqualTo("verify_failed");
        assertThat(end.path("verified").asBoolean()).isFalse();
        daemons.assertRolledBack("vm1", digest, "paused");
        await().atMost(Duration.ofSeconds(10))
                .until(() -> daemons.destinationApi.get("/v1/migrations/" + id).path("phase").asText().equals("failed"));
    }
}
