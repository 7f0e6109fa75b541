package dev.ferry.example.copier;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.device.DeviceKind;
import dev.ferry.device.conformance.ConformanceKit;
import dev.ferry.device.conformance.Report;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * device-model/GUIDE.md tells the truth about this module: every code block it marks with a file is a piece of
 * that file, word for word, and the kit's lines it shows for the copier are the lines the kit prints.
 */
class GuideTest {
    private static final Path ROOT = Path.of("..", "..");
    private static final Pattern BLOCK = Pattern.compile("<!-- file: (\\S+) -->\\n```[a-z]*\\n(.*?)```", Pattern.DOTALL);

    @Test
    void everyMarkedCodeBlockIsInItsFile() throws Exception {
        String guide = Files.readString(ROOT.resolve("device-model/GUIDE.md"));
        Matcher block = BLOCK.matcher(guide);
        List<String> files = new ArrayList<>();
        while (block.find()) {
            Path file = ROOT.resolve(block.group(1));
            assertThat(Files.readString(file)).as("the guide's block from %s", file).contains(block.group(2));
            files.add(block.group(1));
        }
        assertThat(files).as("the guide quotes the kind, the device, the service file and the test")
                .contains("examples/device-example/src/main/java/dev/ferry/example/copier/CopierKind.java",
                        "examples/device-example/src/main/java/dev/ferry/example/copier/CopierDevice.java",
                        "examples/device-example/src/main/resources/META-INF/services/dev.ferry.device.spi.DeviceKindProvider",
                        "examples/device-example/src/test/java/dev/ferry/example/copier/CopierConformanceTest.java");
    }

    @Test
    void theKitsLinesInTheGuideAreTheLinesItPrints() throws Exception {
        String guide = Files.readString(ROOT.resolve("device-model/GUIDE.md"));
        Report report = new ConformanceKit(List.of(new DeviceKind(new CopierKind()))).run();
        List<String> shown = guide.lines().filter(line -> line.matches("[DWV]\\d+ +copier .*") || line.startsWith("conformance: 24")).toList();
        assertThat(shown).hasSizeGreaterThan(5);
        List<String> printed = new ArrayList<>(report.lines());
        printed.add(report.summary());
        assertThat(printed).containsAll(shown);
    }
}
