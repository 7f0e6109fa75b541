package dev.ferry.orchestrator.migration;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** F10's route of device data over the data channels, the one rule both sides apply. */
class DeviceStreamsTest {
    /** With at least as many devices as channels, a device keeps to channel {@code d mod n}, the lane that reads it. */
    @Test
    void withAtLeastAsManyDevicesAsChannelsADeviceKeepsToOneChannel() {
        SplittableRandom random = new SplittableRandom(20261202);
        for (int trial = 0; trial < 1_000; trial++) {
            int channels = random.nextInt(1, 17);
            int devices = random.nextInt(channels, 65);
            int device = random.nextInt(devices);
            long chunk = random.nextLong(0, 1L << 40);
            assertThat(DeviceStreams.channelOf(device, chunk, devices, channels))
                    .as("device %d of %d, chunk %d, %d channels", device, devices, chunk, channels)
                    .isEqualTo(device % channels);
        }
    }

    /** With fewer devices than channels, a device's chunks take every channel in turn, starting at its own index. */
    @Test
    void withFewerDevicesThanChannelsADevicesChunksTakeEveryChannelInTurn() {
        assertThat(DeviceStreams.channelOf(0, 0, 1, 2)).isZero();
        assertThat(DeviceStreams.channelOf(0, 1, 1, 2)).isEqualTo(1);
        assertThat(DeviceStreams.channelOf(0, 2, 1, 2)).isZero();
        assertThat(DeviceStreams.channelOf(2, 0, 3, 4)).isEqualTo(2);
        assertThat(DeviceStreams.channelOf(2, 1, 3, 4)).isEqualTo(3);
        assertThat(DeviceStreams.channelOf(2, 2, 3, 4)).isZero();
        assertThat(DeviceStreams.channelOf(1, (1L << 40) + 2, 2, 4)).isEqualTo(3);
    }
}
