package dev.ferry.orchestrator;

import java.util.concurrent.Callable;
import picocli.AutoComplete;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code ferryd completion}: a bash completion script for {@code ferryd} and for {@code ferryctl} (the
 * wrapper that is {@code ferryd ctl}), generated from the same command definitions as the parser, so it
 * never lists an option the parser does not take. Load it with {@code source <(ferryd completion)}, or
 * install it as {@code /etc/bash_completion.d/ferryd}.
 */
@Command(name = "completion", description = "Prints a bash completion script for ferryd and ferryctl:"
        + " source <(ferryd completion)")
final class Completion implements Callable<Integer> {
    @ParentCommand
    private FerrydCommand ferryd;

    @Spec
    private CommandSpec spec;

    @CommandLine.Option(names = {"-h", "--help"}, usageHelp = true, description = "this help")
    private boolean help;

    @Override
    public Integer call() {
        CommandLine root = spec.root().commandLine();
        ferryd.out().print(AutoComplete.bash("ferryd", root));
        ferryd.out().print(AutoComplete.bash("ferryctl", root.getSubcommands().get("ctl")));
        ferryd.out().flush();
        return 0;
    }
}
