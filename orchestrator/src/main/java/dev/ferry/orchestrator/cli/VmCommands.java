package dev.ferry.orchestrator.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code ctl vm ...}: the VMs of a daemon. */
@Command(name = "vm", description = "The daemon's VMs.",
        subcommands = {VmCommands.Create.class, VmCommands.ListVms.class, VmCommands.Show.class, VmCommands.Pause.class,
                VmCommands.Resume.class, VmCommands.Digest.class, VmCommands.Delete.class})
final class VmCommands implements Callable<Integer> {
    @Spec
    private CommandSpec spec;

    @Override
    public Integer call() {
        throw Ctl.missingCommand(spec);
    }

    @Command(name = "create", description = "Creates a VM from a JSON description (POST /v1/vms).")
    static final class Create implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Option(names = "--file", paramLabel = "VM.json", required = true, description = "the VM's description, as POST /v1/vms takes it")
        private Path file;

        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> {
                String body;
                try {
                    body = Files.readString(file, StandardCharsets.UTF_8);
                } catch (IOException e) {
                    throw new Ctl.InputError("cannot read --file " + Problems.describe(e));
                }
                ctl.print(ctl.api().post("/v1/vms", body));
                return 0;
            });
        }
    }

    @Command(name = "list", description = "Lists the VMs: state, memory, vCPUs, P2P and each device's state.")
    static final class ListVms implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> {
                // Asked first: a failure prints its error alone, not after a header.
                JsonNode answer = ctl.api().get("/v1/vms");
                if (ctl.json()) {
                    ctl.print(answer);
                    return 0;
                }
                ctl.out().printf("%-16s %-10s %10s %5s %-5s %s%n", "VM", "STATE", "MEMORY", "VCPUS", "P2P", "DEVICES");
                for (JsonNode vm : answer.path("vms")) {
                    List<String> devices = new ArrayList<>();
                    vm.path("devices").forEach(d -> devices.add(d.path("id").asText() + ":" + d.path("deviceState").asText()));
                    ctl.out().printf("%-16s %-10s %10s %5d %-5s %s%n", vm.path("id").asText(), vm.path("state").asText(),
                            Progress.bytes(vm.path("memoryBytes").asLong()), vm.path("vcpus").asInt(),
                            vm.path("p2pActive").asBoolean() ? "on" : "off", String.join(" ", devices));
                }
                return 0;
            });
        }
    }

    /** A command on one VM that prints the API's answer. */
    abstract static class OneVm implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Parameters(paramLabel = "VM", description = "the VM's id")
        String vm;

        abstract JsonNode send(ApiClient api) throws IOException, InterruptedException;

        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> {
                ctl.print(send(ctl.api()));
                return 0;
            });
        }
    }

    @Command(name = "show", description = "The VM with its devices (GET /v1/vms/VM).")
    static final class Show extends OneVm {
        @Override
        JsonNode send(ApiClient api) throws IOException, InterruptedException {
            return api.get("/v1/vms/" + vm);
        }
    }

    @Command(name = "pause", description = "Stops the vCPUs and waits until the devices are idle.")
    static final class Pause extends OneVm {
        @Override
        JsonNode send(ApiClient api) throws IOException, InterruptedException {
            return api.post("/v1/vms/" + vm + "/pause", "");
        }
    }

    @Command(name = "resume", description = "Starts the vCPUs again.")
    static final class Resume extends OneVm {
        @Override
        JsonNode send(ApiClient api) throws IOException, InterruptedException {
            return api.post("/v1/vms/" + vm + "/resume", "");
        }
    }

    @Command(name = "digest", description = "SHA-256 of a paused VM's memory and each device's state.")
    static final class Digest extends OneVm {
        @Override
        JsonNode send(ApiClient api) throws IOException, InterruptedException {
            return api.get("/v1/vms/" + vm + "/digest");
        }
    }

    @Command(name = "delete", description = "Deletes the VM (204: in JSON output nothing is printed).")
    static final class Delete implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Parameters(paramLabel = "VM", description = "the VM's id")
        private String vm;

        @Override
        public Integer call() {
            Ctl ctl = Ctl.of(spec);
            return ctl.run(() -> {
                ctl.api().delete("/v1/vms/" + vm);
                if (!ctl.json()) {
                    ctl.out().println("deleted " + vm);
                }
                return 0;
            });
        }
    }
}
