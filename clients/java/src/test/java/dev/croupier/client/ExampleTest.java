package dev.croupier.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.croupier.client.examples.QuickstartExample;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** docs/sdk-java.md quotes the example verbatim, and the example runs against real runtimes with its effects. */
class ExampleTest {
    @TempDir
    Path dir;

    static String between(String text, String start, String end) {
        int from = text.indexOf(start);
        int to = from < 0 ? -1 : text.indexOf(end, from + start.length());
        assertTrue(from >= 0 && to >= 0, "markers " + start + " ... " + end + " not found");
        return text.substring(from + start.length(), to).strip();
    }

    @Test
    void theDocQuotesTheExample() throws Exception {
        String source = Files.readString(Path.of("src/test/java/dev/croupier/client/examples/QuickstartExample.java"));
        String example = between(source, "// [example]", "// [end]");
        String doc = Files.readString(Path.of(System.getProperty("croupier.docs")));
        String quoted = between(doc, "<!-- example: clients/java/src/test/java/dev/croupier/client/examples/"
                + "QuickstartExample.java -->\n```java", "```");
        assertEquals(example, quoted, "docs/sdk-java.md must quote QuickstartExample.java between its markers");
    }

    @Test
    void theExampleRunsAgainstRealRuntimes() throws Exception {
        Map<String, Object> policySpec = new LinkedHashMap<>();
        policySpec.put("arms", List.of(Map.of("name", "blue-banner"), Map.of("name", "green-banner")));
        policySpec.put("algorithm", Map.of("type", "ThompsonSampling"));
        policySpec.put("reward", Map.of("type", "Binary", "attributionWindowSeconds", 3600));
        Map<String, Object> experimentSpec = new LinkedHashMap<>();
        experimentSpec.put("variants", List.of(
                Map.of("name", "control", "weight", 50, "payload", Map.of("shipping", "standard")),
                Map.of("name", "free-shipping", "weight", 50, "payload", Map.of("shipping", "free"))));
        experimentSpec.put("control", "control");
        experimentSpec.put("assignment", Map.of("unitKey", "userId", "salt", "checkout-offer-2025-q1"));
        experimentSpec.put("metric", Map.of("name", "conversion", "type", "Binary"));
        try (RuntimeProcess policy = RuntimeProcess.policy(dir.resolve("policy"), policySpec);
                RuntimeProcess experiment = RuntimeProcess.experiment(dir.resolve("experiment"), experimentSpec)) {
            QuickstartExample.run(policy.url, experiment.url);

            PolicyStats policyStats = CroupierClient.create(policy.url).stats();
            assertEquals(3, policyStats.totals().decisions(), "a decide and a slate of two");
            assertEquals(2, policyStats.totals().rewards(), "the batcher delivered both rewards on close");
            CroupierClient experimentClient = CroupierClient.create(experiment.url);
            ExperimentStats stats = experimentClient.experimentStats();
            long deadline = System.nanoTime() + 5_000_000_000L; // assign's exposure commits within 50 ms
            while (stats.totalExposures() < 2 && System.nanoTime() < deadline) {
                RuntimeProcess.sleep(50);
                stats = experimentClient.experimentStats();
            }
            assertEquals(2, stats.totalExposures(), "user-1 through assign, user-2 reported by the service");
            double conversions = stats.variants().stream().mapToDouble(v -> v.metrics().get(0).sum()).sum();
            assertEquals(1.0, conversions);
        }
    }
}
