package dev.ferry.orchestrator.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.orchestrator.api.Json;
import org.junit.jupiter.api.Test;

/** migration info's lines for what a migration's policy asked: compression with what it saved, and a dry run. */
class MigrationInfoTest {
    @Test
    void compressionShowsItsCodecAndWhatWentOnTheWireForThePagesApartFromDeviceData() throws Exception {
        // 164 MiB on the wire: 100 MiB of compressed pages and 64 MiB of a GPU's device data, which no codec touches.
        JsonNode m = Json.mapper().readTree("""
                {"id": "mig-1", "vm": "vm1", "role": "source", "peer": "127.0.0.1:7071", "phase": "completed",
                 "policy": {"compression": "zstd", "dryRun": false}, "transferredBytes": 171966464, "remainingBytes": 0,
                 "deviceBytes": 67108864, "memoryBytes": {"transferred": 209715200, "total": 268435456}}
                """);
        assertThat(MigrationInfo.render(m)).contains("Compression")
                .contains("zstd, 100.0 MiB on the wire for 200.0 MiB of pages (2.00x); device data is not compressed")
                .doesNotContain("Dry run");
    }

    @Test
    void aDryRunSaysSoAndNoCompressionSaysNothing() throws Exception {
        JsonNode m = Json.mapper().readTree("""
                {"id": "mig-2", "vm": "vm1", "role": "source", "peer": "127.0.0.1:7071", "phase": "completed",
                 "policy": {"compression": "none", "dryRun": true}, "transferredBytes": 900, "remainingBytes": 0,
                 "memoryBytes": {"transferred": 0, "total": 268435456}}
                """);
        assertThat(MigrationInfo.render(m)).contains("Dry run").doesNotContain("Compression");
    }
}
