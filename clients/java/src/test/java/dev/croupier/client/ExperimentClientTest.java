package dev.croupier.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Assign, exposures, outcomes and stats against a real experiment runtime; the runtime's assignment equals the
 * client's local one, for each hash scheme.
 */
class ExperimentClientTest {
    @TempDir
    static Path dir;

    static final List<Assigner.Weight> WEIGHTS = List.of(new Assigner.Weight("control", 34),
            new Assigner.Weight("discount", 33), new Assigner.Weight("bundle", 33));

    static RuntimeProcess sha256;
    static RuntimeProcess fnvV2;
    static RuntimeProcess fnvV1;

    static Map<String, Object> spec(HashAlgorithm algorithm) {
        Map<String, Object> spec = new LinkedHashMap<>();
        spec.put("variants", WEIGHTS.stream().map(w -> Map.<String, Object>of("name", w.name(), "weight", w.weight(),
                "payload", Map.of("offer", w.name()))).toList());
        spec.put("control", "control");
        spec.put("assignment", Map.of("unitKey", "userId", "salt", "checkout-2026", "algorithm",
                algorithm.wireName()));
        spec.put("metric", Map.of("name", "revenue", "type", "Continuous"));
        spec.put("guardrails", List.of(Map.of("name", "refunds", "type", "Count", "direction", "Decrease",
                "threshold", 0.05)));
        return spec;
    }

    @BeforeAll
    static void start() throws Exception {
        sha256 = RuntimeProcess.experiment(dir.resolve("sha"), spec(HashAlgorithm.SHA256_V1));
        fnvV2 = RuntimeProcess.experiment(dir.resolve("fnv2"), spec(HashAlgorithm.FNV1A32_V2));
        fnvV1 = RuntimeProcess.experiment(dir.resolve("fnv1"), spec(HashAlgorithm.FNV1A32_V1));
    }

    @AfterAll
    static void stop() {
        for (RuntimeProcess process : new RuntimeProcess[] {sha256, fnvV2, fnvV1}) {
            if (process != null) {
                process.close();
            }
        }
    }

    @Test
    void theRuntimeAssignsWhatTheLocalAssignerComputes() {
        for (RuntimeProcess runtime : List.of(sha256, fnvV2, fnvV1)) {
            CroupierClient client = CroupierClient.create(runtime.url);
            HashAlgorithm algorithm = runtime == sha256 ? HashAlgorithm.SHA256_V1
                    : runtime == fnvV2 ? HashAlgorithm.FNV1A32_V2 : HashAlgorithm.FNV1A32_V1;
            Assigner local = new Assigner("checkout-2026", WEIGHTS, algorithm);
            Map<String, Integer> seen = new LinkedHashMap<>();
            for (int i = 0; i < 150; i++) {
                String unit = "user-" + i + (i % 7 == 0 ? "-ü𝄞" : "");
                Assignment assignment = client.assign(unit);
                assertEquals(local.assign(unit), assignment.variant(), algorithm + " " + unit);
                assertEquals(Map.of("offer", assignment.variant()), assignment.payload());
                assertNull(assignment.decision());
                assertTrue(assignment.counted());
                seen.merge(assignment.variant(), 1, Integer::sum);
            }
            assertEquals(3, seen.size(), algorithm + ": every variant gets units " + seen);
        }
    }

    @Test
    void exposuresOfLocalAssignmentsAndOutcomesAreRecordedOnce() {
        CroupierClient client = CroupierClient.create(sha256.url);
        Assigner local = new Assigner("checkout-2026", WEIGHTS, HashAlgorithm.SHA256_V1);
        String epoch = client.experimentStats().epoch();
        String variant = local.assign("local-1");

        ExposureResponse first = client.expose("local-1", variant, epoch);
        assertEquals(1, first.recorded());
        assertEquals(new ExposureResponse.Result("local-1", "recorded", variant), first.results().get(0));
        assertEquals("duplicate", client.expose("local-1", variant, epoch).results().get(0).outcome());

        String other = WEIGHTS.stream().map(Assigner.Weight::name).filter(n -> !n.equals(local.assign("local-2")))
                .findFirst().orElseThrow();
        ExposureResponse batch = client.exposures(List.of(new Exposure("local-2", other, epoch),
                new Exposure("local-3", local.assign("local-3"), "an-older-epoch"),
                Exposure.of("local-4", local.assign("local-4"))));
        assertEquals(List.of("mismatch", "stale", "recorded"),
                batch.results().stream().map(ExposureResponse.Result::outcome).toList());
        assertEquals(local.assign("local-2"), batch.results().get(0).variant());

        CroupierApiException unknown = assertThrows(CroupierApiException.InvalidRequestException.class,
                () -> client.exposures(List.of(Exposure.of("local-5", "control"), Exposure.of("local-5", "nope"))));
        assertEquals("exposures[1].variant", unknown.field());

        OutcomeResponse outcomes = client.outcomes(List.of(Outcome.of("local-1", "revenue", 12.5, "order-1"),
                Outcome.of("local-1", "refunds", 1, "refund-1"), Outcome.of("never-seen", "revenue", 3, "order-2")));
        assertEquals(2, outcomes.accepted());
        assertEquals(List.of("accepted", "accepted", "unexposed"),
                outcomes.results().stream().map(OutcomeResponse.Result::outcome).toList());
        OutcomeResponse again = client.outcome("local-1", "revenue", 12.5, "order-1");
        assertEquals(0, again.accepted());
        assertEquals("duplicate", again.results().get(0).outcome());
        assertEquals("order-1", again.results().get(0).eventId());

        CroupierApiException badMetric = assertThrows(CroupierApiException.InvalidRequestException.class,
                () -> client.outcome("local-1", "clicks", 1, null));
        assertEquals("UnknownMetric", badMetric.error());
        assertEquals("outcomes[0].metric", badMetric.field());
        CroupierApiException badCount = assertThrows(CroupierApiException.InvalidRequestException.class,
                () -> client.outcome("local-1", "refunds", 0.5, null));
        assertEquals("InvalidOutcome", badCount.error());

        ExperimentStats stats = client.experimentStats();
        assertEquals("checkout", stats.experiment().name());
        assertEquals("Running", stats.state());
        ExperimentStats.VariantStats exposed = stats.variants().stream().filter(v -> v.name().equals(variant))
                .findFirst().orElseThrow();
        ExperimentStats.MetricStats revenue = exposed.metrics().get(0);
        assertEquals("revenue", revenue.name());
        assertTrue(revenue.sum() >= 12.5, "the accepted outcome counts: " + revenue);
        assertTrue(stats.totalExposures() >= 2);
        CroupierException wrongKind = assertThrows(CroupierException.class, client::stats);
        assertTrue(wrongKind.getMessage().contains("does not serve a DecisionPolicy"), wrongKind.getMessage());
    }

    @Test
    void exposuresAndOutcomesWithEventIdsAreRetriedAndOutcomesWithoutAreNot() throws Exception {
        Assigner local = new Assigner("checkout-2026", WEIGHTS, HashAlgorithm.SHA256_V1);
        try (FaultProxy proxy = new FaultProxy(sha256.url)) {
            proxy.rule((path, n) -> n == 1 ? FaultProxy.Fault.unavailable() : FaultProxy.Fault.FORWARD);
            CroupierClient client = CroupierClient.builder(proxy.url)
                    .retry(new RetryPolicy(3, Duration.ofMillis(10), Duration.ofMillis(50))).build();
            assertEquals(1, client.expose("retry-1", local.assign("retry-1"), null).recorded());
            assertEquals(2, proxy.count("/v1/exposures"), "a 503, then recorded");
            assertEquals(1, client.outcome("retry-1", "revenue", 5, "order-r1").accepted());
            assertEquals(2, proxy.count("/v1/outcomes"), "with an eventId: retried after the 503");

            proxy.rule((path, n) -> FaultProxy.Fault.unavailable());
            assertThrows(CroupierApiException.RuntimeUnavailableException.class,
                    () -> client.outcomes(List.of(Outcome.of("retry-1", "revenue", 5, "order-r2"),
                            Outcome.of("retry-1", "refunds", 1, null))));
            assertEquals(3, proxy.count("/v1/outcomes"), "one outcome without an eventId: sent once");
        }
    }

    @Test
    void assignByTheUnitKeyAttributeAloneMatchesTheLocalAssignmentOfThatUnit() {
        CroupierClient client = CroupierClient.create(sha256.url);
        Assigner local = new Assigner("checkout-2026", WEIGHTS, HashAlgorithm.SHA256_V1);
        for (int i = 0; i < 30; i++) {
            String unit = "attr-" + i;
            Assignment byAttributes = client.assign(Map.of("userId", unit, "tier", "gold"));
            assertEquals(local.assign(unit), byAttributes.variant(), unit);
            assertTrue(byAttributes.counted());
        }
        AssignRequest built = AssignRequest.builder().attributes(Map.of("userId", "attr-0")).build();
        assertNull(built.getUnitId());
        assertEquals(local.assign("attr-0"), client.assign(built).variant());
        // Neither a unitId nor attributes: refused before anything is sent.
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
                () -> AssignRequest.builder().build());
        assertTrue(none.getMessage().contains("unitId"), none.getMessage());
        assertThrows(IllegalArgumentException.class, () -> AssignRequest.ofAttributes(Map.of()));
        assertThrows(NullPointerException.class, () -> AssignRequest.builder(null));
        // Attributes without the unitKey: the runtime's 422 names unitId and the attribute it looked for.
        CroupierApiException missing = assertThrows(CroupierApiException.class,
                () -> client.assign(Map.of("tier", "gold")));
        assertEquals(422, missing.status());
        assertEquals("unitId", missing.field());
        assertTrue(missing.runtimeMessage().contains("attributes.userId"), missing.runtimeMessage());
    }

    @Test
    void assignAsyncAndTheStatsAgree() {
        CroupierClient client = CroupierClient.create(fnvV1.url);
        long before = client.experimentStatsAsync().join().totalExposures();
        List<Assignment> assignments = java.util.stream.IntStream.range(0, 40)
                .mapToObj(i -> client.assignAsync(AssignRequest.builder("async-" + i)
                        .attributes(Map.of("country", "DE", "visits", 3)).build()))
                .toList().stream().map(java.util.concurrent.CompletableFuture::join).toList();
        assertEquals(40, assignments.size());
        assertNotNull(assignments.get(0).epoch());
        // Exposures from assign are committed within the runtime's flush interval.
        long deadline = System.nanoTime() + 5_000_000_000L;
        long after = before;
        while (System.nanoTime() < deadline && after < before + 40) {
            RuntimeProcess.sleep(50);
            after = client.experimentStats().totalExposures();
        }
        assertEquals(before + 40, after);
    }
}
