/**
 * The device SPI: what a device kind implements, and nothing of what the migration core does around it.
 *
 * <p>A kind is a {@link dev.ferry.device.spi.DeviceKindProvider}, found with {@link java.util.ServiceLoader}
 * (a {@code META-INF/services/dev.ferry.device.spi.DeviceKindProvider} file in its jar). For each device of
 * the kind the provider creates a {@link dev.ferry.device.spi.DeviceFunction}: the device's registers, the
 * work one register write starts, and the registers' part of the state image. The core gives the function a
 * {@link dev.ferry.device.spi.DeviceContext}: DMA through the IOMMU, interrupts, and the device memory with
 * its internal dirty log.
 *
 * <p>Everything SPEC.md §1–§3 and W7–W9 ask of a device is the core's: the v1 state bits and their priority
 * order, the data window, the MMIO queue and quiesce, the stream format and its checks, the v2 walk. A kind
 * cannot break them by accident, and {@code ferryd conformance} checks that it did not break them on purpose.
 */
package dev.ferry.device.spi;
