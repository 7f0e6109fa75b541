package dev.ferry.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * deploy/kubernetes/ferryd.yaml against the Kubernetes API's schemas (kubernetes-models, see
 * src/test/lint/check-kubernetes.mjs): every object of a kind and version the API has, every field
 * of the right type, and no field the API does not know.
 */
class KubernetesSchemaTest {
    private static final Path MANIFEST = Path.of("..", "deploy", "kubernetes", "ferryd.yaml").toAbsolutePath().normalize();

    @Test
    void theManifestMatchesTheKubernetesSchemas() throws Exception {
        ExternalTool.Result check = LintTools.node("check-kubernetes.mjs", MANIFEST.toString());
        assertThat(check.exitCode()).as(check.output()).isZero();
        assertThat(check.output()).contains("ok   " + MANIFEST + " DaemonSet/ferryd (apps/v1)",
                "ok   " + MANIFEST + " PodDisruptionBudget/ferryd (policy/v1)",
                "ok   " + MANIFEST + " NetworkPolicy/ferryd (networking.k8s.io/v1)");
    }

    /** The check itself: a wrong type, a misspelt field and an unknown version each fail it. */
    @Test
    void theCheckRefusesWrongTypesUnknownFieldsAndVersions(@TempDir Path dir) throws Exception {
        String manifest = Files.readString(MANIFEST);
        for (String[] change : new String[][] {
                {"timeoutSeconds: 10", "timeoutSeconds: \"10\"", "must be integer"},
                {"updateStrategy:", "updateStrateg:", "fields not in the schema: /spec/updateStrateg"},
                {"apiVersion: policy/v1", "apiVersion: policy/v2", "no schema for policy/v2 PodDisruptionBudget"}}) {
            assertThat(manifest).contains(change[0]);
            Path bad = Files.writeString(dir.resolve("bad.yaml"), manifest.replace(change[0], change[1]));
            ExternalTool.Result check = LintTools.node("check-kubernetes.mjs", bad.toString());
            assertThat(check.exitCode()).as(check.output()).isEqualTo(1);
            assertThat(check.output()).contains(change[2]);
        }
    }
}
