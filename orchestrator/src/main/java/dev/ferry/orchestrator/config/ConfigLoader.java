package dev.ferry.orchestrator.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.ferry.device.DeviceKinds;
import dev.ferry.orchestrator.api.Json;
import dev.ferry.protocol.net.TlsConfig;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Merges {@code ferryd}'s flags ({@link DaemonOptions}) with its optional config file (JSON, or YAML
 * for {@code .yaml}/{@code .yml}), read with the same strictness as the API: an unknown key or a wrong
 * type is an error. Flags win over the file, the file over the defaults.
 */
public final class ConfigLoader {

    /** The config file's keys: the flags' settings plus the limits. */
    record FileSettings(@JsonProperty("http") String http, @JsonProperty("migration") String migration,
                        @JsonProperty("tokenFile") String tokenFile, @JsonProperty("tlsDir") String tlsDir,
                        @JsonProperty("insecure") Boolean insecure, @JsonProperty("maxVms") Integer maxVms,
                        @JsonProperty("maxVmMemoryBytes") Long maxVmMemoryBytes,
                        @JsonProperty("maxIncomingMigrations") Integer maxIncomingMigrations,
                        @JsonProperty("migrationHistory") Integer migrationHistory,
                        @JsonProperty("apiThreads") Integer apiThreads,
                        @JsonProperty("memoryPoolBytes") Long memoryPoolBytes,
                        @JsonProperty("memoryPoolPrefill") Boolean memoryPoolPrefill,
                        @JsonProperty("maxTotalMemoryBytes") Long maxTotalMemoryBytes,
                        @JsonProperty("keepaliveIntervalMs") Long keepaliveIntervalMs,
                        @JsonProperty("keepaliveTimeoutMs") Long keepaliveTimeoutMs,
                        @JsonProperty("handshakeTimeoutMs") Long handshakeTimeoutMs,
                        @JsonProperty("switchoverTimeoutMs") Long switchoverTimeoutMs,
                        @JsonProperty("deviceKinds") List<String> deviceKinds,
                        @JsonProperty("deviceJars") List<String> deviceJars,
                        @JsonProperty("captureDir") String captureDir) {
    }

    /** A usage or configuration error, with the sentence to print. */
    public static final class ConfigException extends Exception {
        public ConfigException(String message) {
            super(message);
        }
    }

    private ConfigLoader() {
    }

    /** Reads the configuration from daemon flags (see {@link DaemonOptions#parse}). */
    public static FerrydConfig load(List<String> args) throws ConfigException {
        return load(DaemonOptions.parse(args));
    }

    /** The flags, the config file they name (if any) and the defaults, merged and checked. */
    public static FerrydConfig load(DaemonOptions flags) throws ConfigException {
        String http = flags.http;
        String migration = flags.migration;
        String tokenFile = flags.tokenFile;
        String tlsDir = flags.tlsDir;
        String configFile = flags.config;
        boolean insecure = flags.insecure;
        Long memoryPool = flags.memoryPoolBytes == null ? null : number("--memory-pool-bytes", flags.memoryPoolBytes);
        List<String> deviceKinds = flags.deviceKinds == null ? null : List.of(flags.deviceKinds.split(",", -1));
        FileSettings file = configFile == null ? new FileSettings(null, null, null, null, null, null, null, null, null, null, null, null,
                null, null, null, null, null, null, null, null)
                : readFile(Path.of(configFile));
        FerrydConfig defaults = FerrydConfig.defaults();
        List<String> jarNames = flags.deviceJars != null && !flags.deviceJars.isEmpty() ? flags.deviceJars : file.deviceJars();
        List<Path> jars = jarNames == null ? List.of() : jarNames.stream().map(Path::of).toList();
        DeviceKinds kinds;
        try {
            // The jars are loaded once, here, so that a bad one stops the start with one line that names it.
            kinds = DeviceKinds.load(jars);
        } catch (DeviceKinds.BadDeviceJar e) {
            throw new ConfigException((flags.deviceJars != null && !flags.deviceJars.isEmpty() ? "--device-jar " : "deviceJars: ")
                    + e.getMessage());
        }
        try {
            Endpoint httpEndpoint = endpoint("--http", first(http, file.http()), defaults.http());
            Endpoint migrationEndpoint = endpoint("--migration", first(migration, file.migration()), defaults.migration());
            String tokenPath = first(tokenFile, file.tokenFile());
            byte[] token = tokenPath == null ? new byte[0] : readToken(Path.of(tokenPath));
            String tls = first(tlsDir, file.tlsDir());
            if (tls != null) {
                checkTls(tlsDir != null ? "--tls-dir" : "tlsDir", Path.of(tls));
            }
            String capture = first(flags.captureDir, file.captureDir());
            if (capture != null) {
                checkCaptureDir(flags.captureDir != null ? "--capture-dir" : "captureDir", Path.of(capture));
            }
            return new FerrydConfig(httpEndpoint, migrationEndpoint, token, tls == null ? null : Path.of(tls),
                    insecure || Boolean.TRUE.equals(file.insecure()),
                    or(file.maxVms(), defaults.maxVms()), or(file.maxVmMemoryBytes(), defaults.maxVmMemoryBytes()),
                    or(file.maxIncomingMigrations(), defaults.maxIncomingMigrations()),
                    or(file.migrationHistory(), defaults.migrationHistory()), or(file.apiThreads(), defaults.apiThreads()),
                    or(first(memoryPool, file.memoryPoolBytes()), defaults.memoryPoolBytes()),
                    flags.memoryPoolPrefill || Boolean.TRUE.equals(file.memoryPoolPrefill()),
                    or(file.maxTotalMemoryBytes(), defaults.maxTotalMemoryBytes()),
                    new FerrydConfig.Timeouts(or(file.keepaliveIntervalMs(), defaults.timeouts().keepaliveIntervalMs()),
                            or(file.keepaliveTimeoutMs(), defaults.timeouts().keepaliveTimeoutMs()),
                            or(file.handshakeTimeoutMs(), defaults.timeouts().handshakeTimeoutMs()),
                            or(file.switchoverTimeoutMs(), defaults.timeouts().switchoverTimeoutMs())),
                    or(first(deviceKinds, file.deviceKinds()), kinds.names()), kinds, jars,
                    capture == null ? null : Path.of(capture).toAbsolutePath().normalize());
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage());
        }
    }

    /** Reads a token file: its content without surrounding white space, which must not be empty. */
    /** Why a file could not be read, in a few words: the exception's message is often only the path again. */
    static String ioReason(java.io.IOException e) {
        if (e instanceof java.nio.file.NoSuchFileException) {
            return "no such file or directory";
        }
        if (e instanceof java.nio.file.AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof java.nio.file.FileSystemException fs && fs.getReason() != null) {
            return fs.getReason();
        }
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    public static byte[] readToken(Path path) throws ConfigException {
        try {
            String token = Files.readString(path, StandardCharsets.UTF_8).strip();
            if (token.isEmpty()) {
                throw new ConfigException("token file " + path + " is empty");
            }
            return token.getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new ConfigException("cannot read token file " + path + ": " + ioReason(e));
        }
    }

    /**
     * Reads the TLS files once at start, so that a missing directory or file, or a key in a format the
     * JDK cannot read, is a configuration error with one line that says what to fix, before anything is
     * built; the daemon reads them again when it builds its listener and client.
     */
    private static void checkTls(String setting, Path dir) throws ConfigException {
        try {
            TlsConfig.fromDirectory(dir);
        } catch (IOException e) {
            throw new ConfigException(setting + ": " + e.getMessage());
        }
    }

    /**
     * A capture directory must exist and take files now: found out at start, not when the first captured
     * migration's file cannot be created. Checked by creating (and deleting) a file in it, which also
     * catches a read-only file system and a directory this user may list but not write.
     */
    private static void checkCaptureDir(String setting, Path dir) throws ConfigException {
        if (!Files.exists(dir)) {
            throw new ConfigException(setting + ": " + dir + " does not exist");
        }
        if (!Files.isDirectory(dir)) {
            throw new ConfigException(setting + ": " + dir + " is not a directory");
        }
        try {
            Files.delete(Files.createTempFile(dir, ".ferryd-", ".probe"));
        } catch (IOException e) {
            throw new ConfigException(setting + ": cannot write in " + dir + " (" + (e.getMessage() == null ? e : e.getClass().getSimpleName()
                    + ": " + e.getMessage()) + ")");
        }
    }

    private static FileSettings readFile(Path path) throws ConfigException {
        String name = path.getFileName().toString();
        ObjectMapper mapper = name.endsWith(".yaml") || name.endsWith(".yml") ? Json.strict(new ObjectMapper(new YAMLFactory()))
                : Json.mapper();
        try {
            FileSettings settings = mapper.readValue(path.toFile(), FileSettings.class);
            if (settings == null) {
                throw new ConfigException("config file " + path + " is empty");
            }
            return settings;
        } catch (IOException e) {
            throw new ConfigException("config file " + path + ": " + Json.describe(e));
        }
    }

    private static Endpoint endpoint(String flag, String value, Endpoint fallback) {
        if (value == null) {
            return fallback;
        }
        try {
            return Endpoint.parse(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(flag + ": " + e.getMessage());
        }
    }

    private static <T> T first(T flag, T file) {
        return flag != null ? flag : file;
    }

    private static long number(String flag, String value) throws ConfigException {
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new ConfigException(flag + " needs a whole number of bytes, not '" + value + "'");
        }
    }

    private static <T> T or(T value, T fallback) {
        return value != null ? value : fallback;
    }
}
