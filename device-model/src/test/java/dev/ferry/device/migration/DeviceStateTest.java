package dev.ferry.device.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class DeviceStateTest {

    @Test
    void labelsNameBitsInApiOrder() {
        assertThat(DeviceState.STOP.label()).isEqualTo("STOP");
        assertThat(DeviceState.RUNNING.label()).isEqualTo("RUNNING");
        assertThat(DeviceState.PRE_COPY.label()).isEqualTo("RUNNING|SAVING");
        assertThat(DeviceState.PRE_COPY_NDMA.label()).isEqualTo("RUNNING|SAVING|NDMA");
        assertThat(DeviceState.RUNNING_NDMA.label()).isEqualTo("RUNNING|NDMA");
        assertThat(DeviceState.of(12).label()).isEqualTo("RESUMING|NDMA");
        assertThat(DeviceState.ERROR.label()).isEqualTo("ERROR");
    }

    @Test
    void parseAcceptsAnyOrderAndCase() {
        assertThat(DeviceState.parse("SAVING|RUNNING")).isEqualTo(DeviceState.PRE_COPY);
        assertThat(DeviceState.parse("ndma | running")).isEqualTo(DeviceState.RUNNING_NDMA);
        assertThat(DeviceState.parse("STOP")).isEqualTo(DeviceState.STOP);
        assertThat(DeviceState.parse("ERROR")).isEqualTo(DeviceState.ERROR);
        for (int bits = 0; bits < 16; bits++) {
            DeviceState state = DeviceState.of(bits);
            assertThat(DeviceState.parse(state.label())).isEqualTo(state);
        }
    }

    @Test
    void parseRejectsUnknownAndRepeatedNames() {
        assertThatThrownBy(() -> DeviceState.parse("RUNNING|FAST")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> DeviceState.parse("RUNNING|RUNNING")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> DeviceState.parse("")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void d1ValidRequestsAreZeroToFifteenWithoutSavingResumingOrResumingRunning() {
        for (int bits = -1; bits < 40; bits++) {
            boolean expected = switch (bits) {
                case 0, 1, 2, 3, 4, 8, 9, 10, 11, 12 -> true;
                default -> false;
            };
            assertThat(DeviceState.of(bits).isValidRequest()).as("D1 for %d", bits).isEqualTo(expected);
        }
    }

    @Test
    void v2TwinsOfV1States() {
        assertThat(DeviceState.of(9).toMigrationState()).isEqualTo(MigrationState.RUNNING_P2P);
        assertThat(DeviceState.of(11).toMigrationState()).isEqualTo(MigrationState.PRE_COPY_P2P);
        assertThat(DeviceState.of(6).toMigrationState()).isEqualTo(MigrationState.ERROR);
        assertThat(DeviceState.of(8).toMigrationState()).isNull();
        assertThat(DeviceState.of(10).toMigrationState()).isNull();
        assertThat(DeviceState.of(12).toMigrationState()).isNull();
    }
}
