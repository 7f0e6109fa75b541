package dev.ferry.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.ferry.device.vm.Vm;
import java.time.Duration;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** M2–M4: peer MMIO in the IOMMU under the VM's P2P policy, and the NDMA requirements. */
class IommuP2pTest {

    private static DeviceConfig gpu() {
        return TestVms.small("gpu0", DeviceKind.GPU);
    }

    private static DeviceConfig nic() {
        return TestVms.small("nic0", DeviceKind.NIC);
    }

    private static DeviceConfig crypto() {
        return TestVms.small("crypto0", DeviceKind.CRYPTO);
    }

    @Test
    void m2AutoMapsPeersOnlyWhenEveryDeviceHasNdma() {
        try (Vm vm = Vm.boot(TestVms.config("vm", P2pPolicy.AUTO, gpu(), nic()))) {
            assertThat(vm.p2pActive()).isTrue();
            assertThat(vm.iommu().peerDoorbells(vm.device("gpu0").orElseThrow()))
                    .containsExactly(Iommu.barAddress(vm.device("nic0").orElseThrow().slot()));
        }
        try (Vm vm = Vm.boot(TestVms.config("vm", P2pPolicy.AUTO, gpu(), nic(), crypto()))) {
            assertThat(vm.p2pActive()).isFalse();
            Device gpu = vm.device("gpu0").orElseThrow();
            assertThat(vm.iommu().peerDoorbells(gpu)).isEmpty();
            gpu.mmioWrite(Device.REG_DOORBELL, gpu.p2pDoorbell(new SplittableRandom(1)), MmioSource.CPU);
            await().atMost(Duration.ofSeconds(10)).until(() -> gpu.stats().snapshot().get("p2pUnavailable") == 1);
            assertThat(vm.device("nic0").orElseThrow().stats().p2pReceived()).isZero();
        }
    }

    @Test
    void m2OnRequiresNdmaOfEveryDeviceAndOffNeverMaps() {
        assertThatThrownBy(() -> TestVms.config("vm", P2pPolicy.ON, gpu(), crypto()))
                .isInstanceOf(DeviceModelException.class)
                .extracting(e -> ((DeviceModelException) e).code()).isEqualTo(DeviceModelException.NDMA_REQUIRED);
        try (Vm vm = Vm.boot(TestVms.config("vm", P2pPolicy.OFF, gpu(), nic()))) {
            assertThat(vm.p2pActive()).isFalse();
            assertThat(vm.iommu().p2pMapped()).isFalse();
        }
    }

    @Test
    void m2UnmappedPeerAddressFaults() {
        try (Vm vm = Vm.boot(TestVms.config("vm", P2pPolicy.OFF, gpu(), nic()))) {
            Device gpu = vm.device("gpu0").orElseThrow();
            assertThatThrownBy(() -> vm.iommu().write(gpu, Iommu.barAddress(1), new byte[8], 0, 8))
                    .isInstanceOf(IommuFault.class);
        }
    }

    @Test
    void m3HotPlugWithoutNdmaIntoActiveP2pFailsAndLeavesTheVmUnchanged() {
        try (Vm vm = Vm.boot(TestVms.config("vm", P2pPolicy.AUTO, gpu(), nic()))) {
            assertThatThrownBy(() -> vm.hotPlug(crypto()))
                    .isInstanceOf(DeviceModelException.class)
                    .extracting(e -> ((DeviceModelException) e).code()).isEqualTo(DeviceModelException.NDMA_REQUIRED);
            assertThat(vm.devices()).extracting(Device::id).containsExactly("gpu0", "nic0");
            assertThat(vm.p2pActive()).isTrue();
            // An NDMA device joins and is mapped as a peer.
            Device serial = vm.hotPlug(TestVms.small("serial0", DeviceKind.SERIAL));
            assertThat(vm.iommu().peerDoorbells(vm.device("gpu0").orElseThrow())).contains(Iommu.barAddress(serial.slot()));
        }
    }

    @Test
    void m2AutoFollowsHotPlugAndUnplug() {
        try (Vm vm = Vm.boot(TestVms.config("vm", P2pPolicy.AUTO, gpu(), crypto()))) {
            assertThat(vm.p2pActive()).isFalse();
            vm.hotPlug(nic());
            assertThat(vm.p2pActive()).isFalse();
            vm.unplug("crypto0");
            assertThat(vm.p2pActive()).isTrue();
            assertThat(vm.device("crypto0")).isEmpty();
            int slot = vm.hotPlug(TestVms.small("serial0", DeviceKind.SERIAL)).slot();
            assertThat(slot).as("the freed slot is reused").isEqualTo(1);
        }
    }

    @Test
    void m4PageRequestsWithoutNdmaAreRejected() {
        assertThatThrownBy(() -> crypto().withPri(true))
                .isInstanceOf(DeviceModelException.class)
                .extracting(e -> ((DeviceModelException) e).code()).isEqualTo(DeviceModelException.NDMA_REQUIRED);
        assertThatThrownBy(() -> nic().withNdma(false).withPri(true))
                .extracting(e -> ((DeviceModelException) e).code()).isEqualTo(DeviceModelException.NDMA_REQUIRED);
        assertThat(nic().withPri(true).pri()).isTrue();
    }
}
