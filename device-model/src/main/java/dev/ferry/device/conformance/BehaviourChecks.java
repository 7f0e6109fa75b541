package dev.ferry.device.conformance;

import dev.ferry.device.Device;
import dev.ferry.device.DeviceConfig;
import dev.ferry.device.DmaObserver;
import dev.ferry.device.TransitionListener;
import dev.ferry.device.migration.DeviceState;
import dev.ferry.device.migration.TransitionStep;
import dev.ferry.device.vm.Vm;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The continuous behaviours (D10's observable half, D11–D13): what the device does between writes, watched
 * through the IOMMU (every DMA it starts and finishes) and its stats, while the synthetic guest keeps ringing
 * its doorbell.
 */
final class BehaviourChecks {
    private BehaviourChecks() {
    }

    /** Every DMA through the IOMMU: how many started, how many are in flight. */
    static final class Dma implements DmaObserver {
        final AtomicInteger started = new AtomicInteger();
        final AtomicInteger inFlight = new AtomicInteger();

        @Override
        public void started(Device initiator, long iova, int length, boolean write) {
            started.incrementAndGet();
            inFlight.incrementAndGet();
        }

        @Override
        public void finished(Device initiator, long iova, int length, boolean write) {
            inFlight.decrementAndGet();
        }
    }

    /** D10: the groups in order, no DMA between RUNNING and NDMA, DMA quiesced before capture. */
    static String priorityOrder(Rig rig) {
        int writes = 0;
        for (DeviceConfig config : rig.configs()) {
            writes += StateChecks.priorityOrder(rig, config);
            Dma dma = new Dma();
            try (Vm vm = rig.boot(config, dma)) {
                Probe probe = new Probe(vm);
                Device device = probe.device();
                if (config.ndma()) {
                    // Work queued while NDMA holds the engine, then the device stops with it queued.
                    probe.begin();
                    probe.require(DeviceState.RUNNING_NDMA);
                    probe.ring(20, 7);
                    probe.require(DeviceState.STOP);
                    int before = dma.started.get();
                    probe.require(DeviceState.RUNNING_NDMA);
                    vm.awaitQuiescent();
                    if (dma.started.get() != before) {
                        throw probe.violation("STOP -> NDMA|RUNNING started " + (dma.started.get() - before)
                                + " DMA: RUNNING was applied before NDMA");
                    }
                }
                // RUNNING -> SAVING with work going on: at the capture step no DMA is in flight.
                AtomicReference<String> problem = new AtomicReference<>();
                TransitionListener atCapture = new TransitionListener() {
                    @Override
                    public void step(Device d, TransitionStep step) {
                        if (step == TransitionStep.CAPTURE && dma.inFlight.get() != 0) {
                            problem.compareAndSet(null, dma.inFlight.get() + " DMA in flight at the capture step");
                        }
                    }
                };
                device.addListener(atCapture);
                for (int round = 0; round < 5; round++) {
                    probe.begin();
                    probe.ring(50, 100 + round);
                    probe.require(DeviceState.STOP_COPY);
                    if (problem.get() != null) {
                        throw probe.violation("RUNNING -> SAVING: " + problem.get());
                    }
                }
                device.removeListener(atCapture);
            }
        }
        return writes + " writes reported their groups in the priority order; no DMA between RUNNING and NDMA; none in flight"
                + " at capture";
    }

    /** D11: once the write that set NDMA returns, no DMA is in flight and none starts; MMIO is still taken. */
    static String ndma(Rig rig) {
        if (!rig.kind().ndmaCapable()) {
            return "the kind has no NDMA; D3 covers its refusals";
        }
        DeviceConfig config = rig.config().withNdma(true);
        Dma dma = new Dma();
        try (Vm vm = rig.boot(config, dma)) {
            Probe probe = new Probe(vm);
            Device device = probe.device();
            for (int round = 0; round < 5; round++) {
                probe.begin();
                probe.ring(50, 200 + round);
                probe.require(round % 2 == 0 ? DeviceState.RUNNING_NDMA : DeviceState.PRE_COPY_NDMA);
                if (dma.inFlight.get() != 0) {
                    throw probe.violation(dma.inFlight.get() + " DMA still in flight when the write that set NDMA returned");
                }
                int started = dma.started.get();
                long interrupts = device.stats().interrupts();
                long accepted = device.stats().snapshot().get("mmioWrites");
                probe.ring(10, 300 + round);
                vm.awaitQuiescent();
                if (dma.started.get() != started) {
                    throw probe.violation((dma.started.get() - started) + " DMA started under NDMA");
                }
                if (device.stats().interrupts() != interrupts) {
                    throw probe.violation("an interrupt was raised under NDMA");
                }
                if (device.stats().snapshot().get("mmioWrites") - accepted != 10) {
                    throw probe.violation("MMIO under NDMA was not accepted (a P2P target must take it)");
                }
            }
        }
        return "5 rounds of NDMA set while busy: nothing in flight at return, no DMA or interrupt after, MMIO accepted";
    }

    /** D12: not RUNNING, nothing happens: no DMA, no interrupts, no change; MMIO is counted and dropped. */
    static String stopped(Rig rig) {
        int cases = 0;
        for (DeviceConfig config : rig.configs()) {
            Dma dma = new Dma();
            try (Vm vm = rig.boot(config, dma)) {
                Probe probe = new Probe(vm);
                for (int start : new int[] {0, 2, 4}) {
                    probe.begin();
                    Rig.busy(vm, probe, start);
                    probe.ring(30, 400 + start);
                    probe.require(DeviceState.of(start));
                    quiet(vm, probe, dma, "while " + DeviceState.of(start), true);
                    cases++;
                }
            }
        }
        return cases + " stopped states (STOP, stop-and-copy, RESUMING) with MMIO and own work offered: nothing moved";
    }

    /** D13: in ERROR the device behaves as if NDMA were set. */
    static String error(Rig rig) {
        int cases = 0;
        for (DeviceConfig config : rig.configs()) {
            Dma dma = new Dma();
            try (Vm vm = rig.boot(config, dma)) {
                Probe probe = new Probe(vm);
                probe.begin();
                Rig.busy(vm, probe, 9);
                probe.require(DeviceState.RESUMING);
                probe.set(DeviceState.RUNNING);
                if (!probe.device().state().isError()) {
                    throw probe.violation("an empty load did not fail into ERROR");
                }
                quiet(vm, probe, dma, "in ERROR", false);
                cases++;
            }
        }
        return cases + " devices in ERROR with MMIO and own work offered: no DMA, no interrupt, no change";
    }

    private static void quiet(Vm vm, Probe probe, Dma dma, String where, boolean countsMmio) {
        Device device = probe.device();
        int started = dma.started.get();
        long interrupts = device.stats().interrupts();
        long whileStopped = device.stats().mmioWhileStopped();
        int queued = device.queuedWork();
        byte[] image = device.digest();
        probe.ring(10, 500);
        probe.ownWork(10, 500);
        vm.awaitQuiescent();
        if (dma.started.get() != started) {
            throw probe.violation((dma.started.get() - started) + " DMA started " + where);
        }
        if (device.stats().interrupts() != interrupts) {
            throw probe.violation("an interrupt was raised " + where);
        }
        if (device.queuedWork() != queued) {
            throw probe.violation("MMIO was queued " + where);
        }
        if (countsMmio && device.stats().mmioWhileStopped() - whileStopped != 10) {
            throw probe.violation("MMIO " + where + " was not counted in mmioWhileStopped: "
                    + (device.stats().mmioWhileStopped() - whileStopped) + " of 10");
        }
        if (!Arrays.equals(device.digest(), image)) {
            throw probe.violation("the device's state (registers, queue or memory) changed " + where);
        }
    }
}
