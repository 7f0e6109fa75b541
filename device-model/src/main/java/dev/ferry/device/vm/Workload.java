package dev.ferry.device.vm;

import dev.ferry.device.Device;
import dev.ferry.device.DeviceModelException;
import dev.ferry.device.MmioSource;
import dev.ferry.device.memory.GuestMemory;
import dev.ferry.device.memory.PageGeometry;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * The vCPUs: one thread each, running a seeded synthetic guest that dirties pages at a set rate and
 * rings device doorbells, and that completes the devices' page requests.
 *
 * <p>A vCPU is in one of three modes. {@link Mode#RUNNING} is VCPU_RUNNING. {@link Mode#DRAINING}
 * starts nothing new but still completes page requests, so devices can finish queued work (M5).
 * {@link Mode#PARKED} does nothing at all. {@link #setMode} returns once every vCPU has seen the new
 * mode and finished the action it was in.
 *
 * <p>One more thread does the devices' own work ({@link WorkloadConfig#deviceDirtyBytesPerSecond()}: each
 * device writing its own memory, {@link Device#ownWork}). It is the guest's work given to the devices, so
 * it runs only in {@link Mode#RUNNING} and follows {@link #setMode} like a vCPU: when the vCPUs stop (S4)
 * or the VM pauses (M5) it has stopped too, and a paused VM stays still. Each device also gates it on its
 * own state: only while RUNNING (D12), NDMA or not.
 */
public final class Workload implements AutoCloseable {
    /** What the vCPUs do. */
    public enum Mode {
        RUNNING, DRAINING, PARKED
    }

    private static final int WRITE_BYTES = 64;
    private static final int MAX_BATCH = 256;
    private static final long MAX_CREDIT_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
    private static final long ACK_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(10);

    /** Seeds the device work's random stream apart from every vCPU's. */
    private static final long DEVICE_WORK_STREAM = 0x5DEECE66DL;
    /** How long the device-work thread sleeps when it has no work: hot-plug and mode changes wake it sooner. */
    private static final long IDLE_PARK_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    private final WorkloadConfig config;
    private final GuestMemory memory;
    private final int vcpus;
    private final Supplier<List<Device>> devices;
    private final PageRequests pageRequests;
    private final Thread[] threads;
    private final AtomicLongArray acked;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition ackedChanged = lock.newCondition();
    private volatile Mode mode = Mode.PARKED;
    private volatile long epoch;
    private volatile int throttlePercent;
    private volatile int deviceThrottlePercent;
    private volatile boolean closed;

    private final LongAdder pagesDirtied = new LongAdder();
    private final LongAdder doorbells = new LongAdder();
    private final LongAdder p2pDoorbells = new LongAdder();
    private final LongAdder pageRequestsServed = new LongAdder();
    private final LongAdder deviceWrites = new LongAdder();

    Workload(String vmId, int vcpus, WorkloadConfig config, GuestMemory memory, Supplier<List<Device>> devices,
             long pageRequestTimeoutMillis) {
        this.config = config;
        this.memory = memory;
        this.devices = devices;
        this.pageRequests = new PageRequests(memory, this::wakeAll, pageRequestTimeoutMillis, TimeUnit.MILLISECONDS);
        this.vcpus = vcpus;
        // The vCPUs, then the device-work thread: every mode change waits for all of them.
        this.threads = new Thread[vcpus + 1];
        this.acked = new AtomicLongArray(vcpus + 1);
        for (int i = 0; i < vcpus; i++) {
            int index = i;
            threads[i] = new Thread(() -> runVcpu(index), "ferry-vcpu-" + vmId + "-" + i);
            threads[i].setDaemon(true);
        }
        threads[vcpus] = new Thread(() -> runDeviceWork(vcpus), "ferry-device-work-" + vmId);
        threads[vcpus].setDaemon(true);
    }

    void start() {
        for (Thread thread : threads) {
            thread.start();
        }
    }

    PageRequests pageRequests() {
        return pageRequests;
    }

    public WorkloadConfig config() {
        return config;
    }

    public Mode mode() {
        return mode;
    }

    /** Auto-converge: slows every rate by this percentage (0–99) (F3). */
    public void setThrottle(int percent) {
        if (percent < 0 || percent > 99) {
            throw new IllegalArgumentException("throttle must be 0-99%: " + percent);
        }
        throttlePercent = percent;
    }

    public int throttle() {
        return throttlePercent;
    }

    /**
     * Slows the devices' own work by this percentage (0–99), as {@link #setThrottle} slows the vCPUs: F9's
     * answer to device data that keeps the downtime estimate above the limit.
     */
    void setDeviceWorkThrottle(int percent) {
        if (percent < 0 || percent > 99) {
            throw new IllegalArgumentException("device work throttle must be 0-99%: " + percent);
        }
        deviceThrottlePercent = percent;
    }

    int deviceWorkThrottle() {
        return deviceThrottlePercent;
    }

    /** Writes of device memory done as the devices' own work, summed over the devices. */
    public long deviceWrites() {
        return deviceWrites.sum();
    }

    /** The device list changed (hot-plug): the device-work thread looks again at once. */
    void devicesChanged() {
        LockSupport.unpark(threads[vcpus]);
    }

    public long pagesDirtied() {
        return pagesDirtied.sum();
    }

    public long doorbells() {
        return doorbells.sum();
    }

    public long p2pDoorbells() {
        return p2pDoorbells.sum();
    }

    public long pageRequestsServed() {
        return pageRequestsServed.sum();
    }

    /**
     * Switches every vCPU to {@code next}. For {@link Mode#PARKED} and {@link Mode#DRAINING} it waits
     * until each has seen it: when this returns no vCPU is still inside an action of the previous mode.
     * {@link Mode#RUNNING} has nothing to wait out (a vCPU that has not seen it yet does nothing the guest
     * would miss), so it returns once every vCPU is woken: on a destination this is the last step before
     * CONFIRM, inside the downtime (R4), where waiting for three threads to be scheduled on two loaded
     * cores cost 0.15-1.6 ms. A later mode change still waits for every vCPU to have seen that one.
     */
    public void setMode(Mode next) {
        lock.lock();
        try {
            mode = next;
            long target = ++epoch;
            wakeAll();
            if (next == Mode.RUNNING) {
                return;
            }
            long remaining = ACK_TIMEOUT_NANOS;
            while (!allAcked(target)) {
                if (remaining <= 0) {
                    throw new DeviceModelException(DeviceModelException.TIMEOUT, "vCPUs did not switch to " + next + " in time");
                }
                remaining = ackedChanged.awaitNanos(remaining);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new DeviceModelException(DeviceModelException.TIMEOUT, "interrupted while switching vCPUs to " + next);
        } finally {
            lock.unlock();
        }
    }

    private boolean allAcked(long target) {
        for (int i = 0; i < acked.length(); i++) {
            if (acked.get(i) < target && threads[i].isAlive()) {
                return false;
            }
        }
        return true;
    }

    private void ack(int index, long seen) {
        if (acked.get(index) >= seen) {
            return;
        }
        acked.set(index, seen);
        lock.lock();
        try {
            ackedChanged.signalAll();
        } finally {
            lock.unlock();
        }
    }

    private void wakeAll() {
        for (Thread thread : threads) {
            LockSupport.unpark(thread);
        }
    }

    @Override
    public void close() {
        closed = true;
        wakeAll();
        for (Thread thread : threads) {
            try {
                thread.join(TimeUnit.SECONDS.toMillis(10));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private void runVcpu(int index) {
        SplittableRandom random = new SplittableRandom(config.seed() * 0x9E3779B97F4A7C15L + index);
        byte[] scratch = new byte[WRITE_BYTES];
        double pageCredit = 0;
        double bellCredit = 0;
        double p2pCredit = 0;
        long last = System.nanoTime();
        while (!closed) {
            long seen = epoch;
            Mode now = mode;
            if (now == Mode.PARKED) {
                ack(index, seen);
                if (epoch == seen && !closed) {
                    LockSupport.park(this);
                }
                last = System.nanoTime();
                continue;
            }
            pageRequestsServed.add(pageRequests.service());
            if (now == Mode.DRAINING) {
                ack(index, seen);
                if (epoch == seen && !closed) {
                    LockSupport.parkNanos(this, TimeUnit.MILLISECONDS.toNanos(1));
                }
                last = System.nanoTime();
                continue;
            }
            long t = System.nanoTime();
            long elapsed = Math.min(t - last, MAX_CREDIT_NANOS);
            last = t;
            double scale = (100 - throttlePercent) / 100.0 / vcpus / 1e9 * elapsed;
            pageCredit += config.dirtyBytesPerSecond() / (double) PageGeometry.PAGE_SIZE * scale;
            bellCredit += config.doorbellsPerSecond() * scale;
            p2pCredit += config.p2pOpsPerSecond() * scale;
            int batch = 0;
            while (pageCredit >= 1 && batch < MAX_BATCH) {
                dirtyPage(random, scratch);
                pageCredit--;
                batch++;
            }
            while (bellCredit >= 1 && batch < MAX_BATCH) {
                ringDoorbell(random);
                bellCredit--;
                batch++;
            }
            while (p2pCredit >= 1 && batch < MAX_BATCH) {
                ringP2p(random);
                p2pCredit--;
                batch++;
            }
            ack(index, seen);
            if (batch < MAX_BATCH && epoch == seen && !closed) {
                LockSupport.parkNanos(this, nanosToNextAction(pageCredit, bellCredit, p2pCredit, vcpus));
            }
        }
        ack(index, Long.MAX_VALUE);
    }

    /**
     * The devices' own work: every device writes its memory at {@code deviceDirtyBytesPerSecond}, each write
     * dirtying a page, and devices with timed work (a GPU that re-partitions, W8) advance it by the time that
     * passed; both slowed by the device-work throttle. Time and credit accrue only while RUNNING, so a pause
     * does not turn into a burst afterwards.
     */
    private void runDeviceWork(int index) {
        // A stream per device, from the seed and the device's id: what a device writes does not depend on
        // how the work of several devices interleaves, or on which other devices the VM has.
        Map<Device, SplittableRandom> randoms = new IdentityHashMap<>();
        double perNano = config.deviceDirtyBytesPerSecond() / (double) PageGeometry.PAGE_SIZE / 1e9;
        double credit = 0;
        long last = System.nanoTime();
        while (!closed) {
            long seen = epoch;
            List<Device> now = devices.get();
            boolean timed = false;
            for (Device device : now) {
                timed |= device.hasTimedOwnWork();
            }
            if (mode != Mode.RUNNING || (perNano == 0 && !timed)) {
                ack(index, seen);
                if (epoch == seen && !closed) {
                    LockSupport.parkNanos(this, IDLE_PARK_NANOS);
                }
                last = System.nanoTime();
                continue;
            }
            long t = System.nanoTime();
            long elapsed = Math.min(t - last, MAX_CREDIT_NANOS);
            last = t;
            double share = (100 - deviceThrottlePercent) / 100.0;
            // Bounded, so that work the devices could not keep up with does not come as a burst later.
            credit = Math.min(credit + perNano * share * elapsed, 4.0 * MAX_BATCH);
            int writes = (int) Math.min(credit, MAX_BATCH);
            credit -= writes;
            if (randoms.size() > now.size()) {
                randoms.keySet().retainAll(now);
            }
            boolean busy = false;
            for (Device device : now) {
                if (writes > 0) {
                    SplittableRandom random = randoms.computeIfAbsent(device, d -> deviceRandom(config.seed(), d.id()));
                    deviceWrites.add(device.ownWork(writes, random));
                }
                if (device.hasTimedOwnWork()) {
                    busy |= device.advanceOwnWork((long) (elapsed * share));
                }
            }
            ack(index, seen);
            if (!busy && epoch == seen && !closed && credit < MAX_BATCH) {
                double wait = perNano == 0 ? Double.MAX_VALUE : (1 - credit) / (perNano * Math.max(share, 0.01));
                LockSupport.parkNanos(this, (long) Math.max(TimeUnit.MILLISECONDS.toNanos(1),
                        Math.min(wait, TimeUnit.MILLISECONDS.toNanos(5))));
            }
        }
        ack(index, Long.MAX_VALUE);
    }

    /** The seeded stream of a device's own work. */
    static SplittableRandom deviceRandom(long seed, String deviceId) {
        return new SplittableRandom((seed * 0x9E3779B97F4A7C15L ^ DEVICE_WORK_STREAM) + deviceId.hashCode());
    }

    private long nanosToNextAction(double pageCredit, double bellCredit, double p2pCredit, int vcpus) {
        double factor = (100 - throttlePercent) / 100.0 / vcpus / 1e9;
        double wait = Math.min(Math.min(
                until(pageCredit, config.dirtyBytesPerSecond() / (double) PageGeometry.PAGE_SIZE * factor),
                until(bellCredit, config.doorbellsPerSecond() * factor)),
                until(p2pCredit, config.p2pOpsPerSecond() * factor));
        // At least a millisecond: a vCPU does its actions in batches rather than waking for each one,
        // which would cost more in context switches than the actions themselves.
        return (long) Math.max(TimeUnit.MILLISECONDS.toNanos(1), Math.min(wait, TimeUnit.MILLISECONDS.toNanos(5)));
    }

    private static double until(double credit, double perNano) {
        return perNano <= 0 ? Double.MAX_VALUE : (1 - credit) / perNano;
    }

    private void dirtyPage(SplittableRandom random, byte[] scratch) {
        long page = random.nextLong(memory.pages());
        int offset = random.nextInt(PageGeometry.PAGE_SIZE / WRITE_BYTES) * WRITE_BYTES;
        random.nextBytes(scratch);
        memory.vcpuWrite(page * PageGeometry.PAGE_SIZE + offset, scratch, 0, WRITE_BYTES);
        pagesDirtied.increment();
    }

    private void ringDoorbell(SplittableRandom random) {
        List<Device> all = devices.get();
        if (all.isEmpty()) {
            return;
        }
        Device device = all.get(random.nextInt(all.size()));
        device.mmioWrite(Device.REG_DOORBELL, device.workloadDoorbell(random), MmioSource.CPU);
        doorbells.increment();
    }

    private void ringP2p(SplittableRandom random) {
        List<Device> all = devices.get();
        int initiators = 0;
        for (Device device : all) {
            if (device.initiatesP2p()) {
                initiators++;
            }
        }
        if (initiators == 0) {
            return;
        }
        int pick = random.nextInt(initiators);
        for (Device device : all) {
            if (device.initiatesP2p() && pick-- == 0) {
                device.mmioWrite(Device.REG_DOORBELL, device.p2pDoorbell(random), MmioSource.CPU);
                p2pDoorbells.increment();
                return;
            }
        }
    }
}
