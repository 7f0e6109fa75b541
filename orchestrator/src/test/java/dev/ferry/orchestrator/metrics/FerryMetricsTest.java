package dev.ferry.orchestrator.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.DeviceKind;
import dev.ferry.orchestrator.migration.MigrationFailure;
import dev.ferry.protocol.ErrorCode;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class FerryMetricsTest {
    private static final Pattern CODE = Pattern.compile("`([a-z_]+)`");

    /** Every failure code a migration can end with is one whose series exists from the start. */
    @Test
    void theReasonListHoldsEveryCodeAMigrationCanFailWith() throws Exception {
        Set<String> codes = new TreeSet<>();
        for (Field field : MigrationFailure.class.getFields()) {
            if (Modifier.isStatic(field.getModifiers()) && field.getType() == String.class) {
                codes.add((String) field.get(null));
            }
        }
        assertThat(codes).contains(MigrationFailure.SWITCHOVER_UNKNOWN, MigrationFailure.PROTOCOL_ERROR);
        for (ErrorCode code : ErrorCode.values()) {
            codes.add(MigrationFailure.codeOf(code));
        }
        // The migration error codes docs/api.md lists, from its table's first column.
        String api = Files.readString(Path.of("docs", "api.md"));
        String table = api.substring(api.indexOf("Migration errors"));
        table = table.substring(0, table.indexOf("\n\n", table.indexOf("| code |")));
        int documented = 0;
        for (String row : table.lines().filter(line -> line.startsWith("| `")).toList()) {
            Matcher m = CODE.matcher(row.substring(0, row.indexOf(" |", 2)));
            while (m.find()) {
                codes.add(m.group(1));
                documented++;
            }
        }
        assertThat(documented).isGreaterThan(10);
        assertThat(FerryMetrics.FAILURE_REASONS).containsAll(codes).doesNotHaveDuplicates();
    }

    @Test
    void everyBoundedSeriesIsThereAtZeroBeforeItsFirstEvent() {
        try (FerryMetrics metrics = new FerryMetrics("1.2.3")) {
            List<String> lines = metrics.scrape(null).lines().toList();
            for (String role : FerryMetrics.ROLES) {
                assertThat(lines).contains("ferry_migrations_started_total{role=\"" + role + "\"} 0.0");
                for (String result : FerryMetrics.RESULTS) {
                    assertThat(lines).contains("ferry_migrations_finished_total{result=\"" + result + "\",role=\"" + role + "\"} 0.0");
                }
                for (String reason : FerryMetrics.FAILURE_REASONS) {
                    assertThat(lines).contains("ferry_migration_failures_total{reason=\"" + reason + "\",role=\"" + role + "\"} 0.0");
                }
                assertThat(lines).contains("ferry_migration_duration_seconds_count{role=\"" + role + "\"} 0");
            }
            for (String phase : FerryMetrics.PHASES) {
                for (String kind : FerryMetrics.BYTE_KINDS) {
                    String labels = "{kind=\"" + kind + "\",phase=\"" + phase + "\"} 0.0";
                    assertThat(lines).contains("ferry_migration_sent_bytes_total" + labels, "ferry_migration_received_bytes_total" + labels);
                }
            }
            for (DeviceKind kind : DeviceKind.values()) {
                for (String result : FerryMetrics.TRANSITION_RESULTS) {
                    assertThat(lines).contains("ferry_device_state_transitions_total{kind=\"" + kind.label() + "\",result=\"" + result + "\"} 0.0");
                }
            }
            assertThat(lines).contains("ferry_migration_downtime_seconds_count 0", "ferry_migration_iterations_total 0.0");

            metrics.migrationFailed("source", MigrationFailure.SWITCHOVER_UNKNOWN);
            metrics.sent("stop_copy", "device", 4096);
            metrics.received("stop_copy", "device", 4096);
            metrics.deviceTransition("gpu", false);
            // A kind from a user's jar counts too, in a series of its own.
            metrics.deviceTransition("fpga", true);
            lines = metrics.scrape(null).lines().toList();
            assertThat(lines).contains(
                    "ferry_migration_failures_total{reason=\"switchover_unknown\",role=\"source\"} 1.0",
                    "ferry_migration_sent_bytes_total{kind=\"device\",phase=\"stop_copy\"} 4096.0",
                    "ferry_migration_received_bytes_total{kind=\"device\",phase=\"stop_copy\"} 4096.0",
                    "ferry_device_state_transitions_total{kind=\"gpu\",result=\"failed\"} 1.0",
                    "ferry_device_state_transitions_total{kind=\"fpga\",result=\"ok\"} 1.0");
        }
    }

    @Test
    void histogramsHaveAFewBucketsAndNoDecayingMaximum() {
        try (FerryMetrics metrics = new FerryMetrics("1.2.3")) {
            metrics.migrationFinished("source", "completed", TimeUnit.SECONDS.toNanos(3));
            metrics.downtime(TimeUnit.MILLISECONDS.toNanos(7));
            for (String accept : new String[] {null, "application/openmetrics-text"}) {
                String text = metrics.scrape(accept);
                assertThat(text).doesNotContain("ferry_migration_duration_seconds_max").doesNotContain("ferry_migration_downtime_seconds_max")
                        .doesNotContain("jvm_gc_pause_seconds_max");
                long durationBuckets = text.lines().filter(l -> l.startsWith("ferry_migration_duration_seconds_bucket{role=\"source\"")).count();
                long downtimeBuckets = text.lines().filter(l -> l.startsWith("ferry_migration_downtime_seconds_bucket")).count();
                assertThat(durationBuckets).isBetween(8L, 20L);
                assertThat(downtimeBuckets).isBetween(8L, 20L);
                // 7 ms lands in the 10 ms bucket and above, not below.
                assertThat(text).contains("ferry_migration_downtime_seconds_bucket{le=\"0.005\"} 0")
                        .contains("ferry_migration_downtime_seconds_bucket{le=\"0.01\"} 1");
                // Gauges named *_max that are not a histogram's are kept.
                assertThat(text).contains("jvm_memory_max_bytes");
            }
            assertThat(metrics.scrape("application/openmetrics-text")).endsWith("# EOF\n");
        }
    }

    @Test
    void theReplacedBindersHaveHelpBaseUnitsAndNoIdentityLabels() {
        try (FerryMetrics metrics = new FerryMetrics("1.2.3")) {
            String text = metrics.scrape(null);
            assertThat(text).contains("# TYPE process_cpu_seconds_total counter", "# TYPE jvm_available_processors gauge")
                    .doesNotContain("process_cpu_time_ns").doesNotContain("system_cpu_count");
            List<String> allocators = text.lines().filter(l -> l.startsWith("netty_allocator")).toList();
            for (String line : allocators) {
                assertThat(line).matches("netty_allocator_memory_used_bytes\\{allocator=\"(default|migration)\",memory_type=\"(direct|heap)\",?} .*");
            }
            // The migration channels' pooled allocator is one of them (Transport.allocator()).
            assertThat(allocators).anyMatch(l -> l.contains("allocator=\"migration\",memory_type=\"direct\""));
            for (String line : text.lines().filter(l -> l.startsWith("# HELP ")).toList()) {
                assertThat(line.split(" ", 4)).as(line).hasSize(4);
                assertThat(line.split(" ", 4)[3]).as(line).isNotBlank();
            }
        }
    }
}
