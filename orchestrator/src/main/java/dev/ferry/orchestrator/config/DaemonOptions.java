package dev.ferry.orchestrator.config;

import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * The daemon's flags as given, unchecked: {@link ConfigLoader} merges them with the config file and the
 * defaults and validates the result. Values stay strings so that a bad one is reported in the loader's
 * own words ("--http: ... HOST:PORT"), the same for a flag and for the file's key.
 */
public final class DaemonOptions {
    @Option(names = "--http", paramLabel = "HOST:PORT",
            description = "control API (default 127.0.0.1:7070; port 0 picks a free port)")
    String http;

    @Option(names = "--migration", paramLabel = "HOST:PORT", description = "migration listener (default 127.0.0.1:7071)")
    String migration;

    @Option(names = "--token-file", paramLabel = "FILE", description = "bearer token for the API and the migration handshake")
    String tokenFile;

    @Option(names = "--tls-dir", paramLabel = "DIR", description = "mutual TLS on migration channels: ca.pem, cert.pem, key.pem")
    String tlsDir;

    @Option(names = "--memory-pool-bytes", paramLabel = "N",
            description = "freed guest memory kept zeroed for the next VM (default 1073741824; 0 none)")
    String memoryPoolBytes;

    @Option(names = "--memory-pool-prefill",
            description = "fill the memory pool at start, in the background, so that the first VMs land in memory already backed")
    boolean memoryPoolPrefill;

    @Option(names = "--device-kinds", paramLabel = "LIST",
            description = "the device kinds this daemon hosts and takes in migrations, comma-separated (default all)")
    String deviceKinds;

    @Option(names = "--device-jar", paramLabel = "JAR",
            description = "a jar of device kinds (the device SPI, found with ServiceLoader) to host; repeatable")
    List<String> deviceJars;
    @Option(names = "--capture-dir", paramLabel = "DIR",
            description = "where captured migration streams go (a migration asks with capture); off without it")
    String captureDir;

    @Option(names = "--config", paramLabel = "FILE", description = "the same settings as JSON or YAML; flags win over the file")
    String config;

    @Option(names = "--insecure", description = "allow a non-loopback listener without a token")
    boolean insecure;

    /**
     * Parses daemon flags alone (no subcommands), as {@code ferryd} would: for tests and tools that
     * build a configuration from a flag list.
     */
    public static DaemonOptions parse(List<String> args) throws ConfigLoader.ConfigException {
        DaemonOptions options = new DaemonOptions();
        CommandLine line = new CommandLine(options);
        try {
            line.parseArgs(args.toArray(String[]::new));
        } catch (CommandLine.UnmatchedArgumentException e) {
            throw new ConfigLoader.ConfigException("unknown option " + e.getUnmatched().get(0));
        } catch (CommandLine.ParameterException e) {
            throw new ConfigLoader.ConfigException(e.getMessage());
        }
        return options;
    }
}
