package dev.ferry.device;

import dev.ferry.device.spi.DeviceKindProvider;
import java.io.IOException;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.jar.JarFile;

/**
 * The device kinds one daemon (or one conformance run) knows: the built-in kinds, every
 * {@link DeviceKindProvider} on the class path, and those of the jars it was given ({@code --device-jar}),
 * found with {@link ServiceLoader}. A name is known once: a jar that brings a kind already known is refused.
 */
public final class DeviceKinds {
    private static final DeviceKinds BUILT_IN = new DeviceKinds(DeviceKind.builtIn(), Map.of());

    private final Map<String, DeviceKind> kinds;
    private final Map<String, Path> origins;

    private DeviceKinds(List<DeviceKind> kinds, Map<String, Path> origins) {
        Map<String, DeviceKind> byName = new LinkedHashMap<>();
        for (DeviceKind kind : kinds) {
            byName.put(kind.label(), kind);
        }
        this.kinds = Collections.unmodifiableMap(byName);
        this.origins = Map.copyOf(origins);
    }

    /** The five built-in kinds only. */
    public static DeviceKinds builtIn() {
        return BUILT_IN;
    }

    /**
     * The built-in kinds, the providers on this class loader's class path, and the providers of each jar, in
     * that order.
     *
     * @throws BadDeviceJar one sentence naming the jar and what is wrong with it: missing or unreadable,
     *                      no provider in it, a provider that cannot be loaded or describes itself badly, or a
     *                      name already known
     */
    public static DeviceKinds load(List<Path> jars) throws BadDeviceJar {
        List<DeviceKind> all = new ArrayList<>(DeviceKind.builtIn());
        Map<String, Path> origins = new LinkedHashMap<>();
        ClassLoader parent = DeviceKinds.class.getClassLoader();
        for (DeviceKindProvider provider : providers(ServiceLoader.load(DeviceKindProvider.class, parent), null)) {
            add(all, origins, provider, null);
        }
        if (jars.isEmpty()) {
            return new DeviceKinds(all, origins);
        }
        // One loader for all the jars, so that a jar may use classes of another (a kind and its library).
        ClassLoader loader = open(jars, parent);
        List<DeviceKindProvider> found = providers(ServiceLoader.load(DeviceKindProvider.class, loader), null).stream()
                .filter(p -> p.getClass().getClassLoader() == loader).toList();
        for (Path jar : jars) {
            List<DeviceKindProvider> inJar = found.stream().filter(p -> jar.toAbsolutePath().normalize().equals(origin(p))).toList();
            if (inJar.isEmpty()) {
                throw new BadDeviceJar(jar + ": no device kind in it (a META-INF/services/" + DeviceKindProvider.class.getName()
                        + " file naming a provider class)");
            }
            for (DeviceKindProvider provider : inJar) {
                add(all, origins, provider, jar);
            }
        }
        return new DeviceKinds(all, origins);
    }

    /** The jar a provider's class came from. */
    private static Path origin(DeviceKindProvider provider) {
        try {
            var source = provider.getClass().getProtectionDomain().getCodeSource();
            return source == null ? null : Path.of(source.getLocation().toURI()).toAbsolutePath().normalize();
        } catch (java.net.URISyntaxException | RuntimeException e) {
            return null;
        }
    }

    private static ClassLoader open(List<Path> jars, ClassLoader parent) throws BadDeviceJar {
        List<URL> urls = new ArrayList<>();
        java.util.Set<Path> seen = new java.util.HashSet<>();
        for (Path given : jars) {
            Path jar = given.toAbsolutePath().normalize();
            if (!seen.add(jar)) {
                throw new BadDeviceJar(given + ": given twice");
            }
            if (!Files.isRegularFile(jar)) {
                throw new BadDeviceJar(given + ": no such file");
            }
            try (JarFile file = new JarFile(jar.toFile())) {
                file.size();
            } catch (IOException e) {
                throw new BadDeviceJar(given + ": not a readable jar (" + e.getMessage() + ")");
            }
            try {
                urls.add(jar.toUri().toURL());
            } catch (MalformedURLException e) {
                throw new BadDeviceJar(given + ": " + e.getMessage());
            }
        }
        return new URLClassLoader("ferry-device-jars", urls.toArray(URL[]::new), parent);
    }

    private static List<DeviceKindProvider> providers(ServiceLoader<DeviceKindProvider> loader, Path jar) throws BadDeviceJar {
        List<DeviceKindProvider> providers = new ArrayList<>();
        try {
            for (DeviceKindProvider provider : loader) {
                providers.add(provider);
            }
        } catch (ServiceConfigurationError | LinkageError e) {
            throw new BadDeviceJar((jar == null ? "class path" : jar.toString()) + ": a device kind cannot be loaded: "
                    + e.getMessage());
        }
        return providers;
    }

    private static void add(List<DeviceKind> all, Map<String, Path> origins, DeviceKindProvider provider, Path jar)
            throws BadDeviceJar {
        String where = jar == null ? "class path" : jar.toString();
        DeviceKind kind;
        try {
            kind = new DeviceKind(provider);
        } catch (RuntimeException e) {
            throw new BadDeviceJar(where + ": " + e.getMessage());
        }
        for (DeviceKind known : all) {
            if (known.equals(kind)) {
                if (known.provider().getClass().equals(provider.getClass())) {
                    return; // the built-ins' own service file, or a class path that lists a provider twice
                }
                Path first = origins.get(known.label());
                throw new BadDeviceJar(where + ": device kind '" + kind.label() + "' is already known (from "
                        + (known.isBuiltIn() && first == null ? "the built-in kinds" : first == null ? "the class path" : first) + ")");
            }
        }
        all.add(kind);
        if (jar != null) {
            origins.put(kind.label(), jar);
        }
    }

    /** A kind by its name, case-insensitive. */
    public DeviceKind of(String name) {
        DeviceKind kind = kinds.get(name.toLowerCase(Locale.ROOT));
        if (kind == null) {
            throw DeviceModelException.invalid("unknown device kind '" + name + "'; known: " + known());
        }
        return kind;
    }

    public boolean contains(String name) {
        return kinds.containsKey(name.toLowerCase(Locale.ROOT));
    }

    /** Every kind, built-in first. */
    public List<DeviceKind> all() {
        return List.copyOf(kinds.values());
    }

    /** Every kind's name, built-in first. */
    public List<String> names() {
        return List.copyOf(kinds.keySet());
    }

    /** The names, for messages: {@code nic, gpu, ...}. */
    public String known() {
        return String.join(", ", kinds.keySet());
    }

    /** The jar a kind came from, or {@code null} for a built-in kind or one on the class path. */
    public Path origin(DeviceKind kind) {
        return origins.get(kind.label());
    }

    /** A device jar that cannot be used, with one sentence that says why. */
    public static final class BadDeviceJar extends Exception {
        public BadDeviceJar(String message) {
            super(message);
        }
    }
}
