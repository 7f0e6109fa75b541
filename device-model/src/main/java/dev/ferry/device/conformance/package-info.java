/**
 * The conformance kit: every rule of SPEC §1–§3 and W7–W9 run against a device kind, built-in or loaded from a
 * jar, with the first counter-example and the exact writes that show it. {@code ferryd conformance} prints its
 * report; the device model's own tests run it on every built-in kind.
 */
package dev.ferry.device.conformance;
