package dev.croupier.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Rank against a real policy runtime: slates, per-position rewards, errors, no retry, the fallback slate. */
class RankClientTest {
    @TempDir
    static Path dir;

    static RuntimeProcess runtime;
    static CroupierClient client;

    @BeforeAll
    static void start() throws Exception {
        runtime = RuntimeProcess.policy(dir, RuntimeProcess.thompsonSpec());
        client = CroupierClient.create(runtime.url);
    }

    @AfterAll
    static void stop() {
        if (runtime != null) {
            runtime.close();
        }
    }

    static double sum(Slate.Position position) {
        return position.probabilities().values().stream().mapToDouble(Double::doubleValue).sum();
    }

    @Test
    void aSlateHasKDistinctArmsEachDrawnFromTheArmsNotPlacedAbove() {
        Slate slate = client.rank(RankRequest.builder(3).unitId("player-7").build());
        assertFalse(slate.fallback());
        assertFalse(slate.slateId().isEmpty());
        assertTrue(slate.policyVersion().startsWith("g1-"), slate.policyVersion());
        assertEquals(3, slate.positions().size());
        assertEquals(Set.of("blue", "green", "red"), new HashSet<>(slate.arms()));
        Set<String> above = new HashSet<>();
        Set<String> ids = new HashSet<>();
        for (int i = 1; i <= 3; i++) {
            Slate.Position position = slate.position(i);
            assertEquals(i, position.position());
            Set<String> expected = new HashSet<>(Set.of("blue", "green", "red"));
            expected.removeAll(above);
            assertEquals(expected, position.probabilities().keySet(), "position " + i);
            assertEquals(1.0, sum(position), 1e-9);
            assertEquals(position.probabilities().get(position.arm()), position.propensity());
            above.add(position.arm());
            ids.add(position.decisionId());
        }
        assertEquals(1.0, slate.position(3).propensity(), 1e-12, "the last arm left is certain");
        assertEquals(3, ids.size(), "each position is a decision of its own");
        assertThrows(IndexOutOfBoundsException.class, () -> slate.position(4));
    }

    @Test
    void eachPositionTakesItsOwnReward() {
        long before = client.stats().totals().rewards();
        Slate slate = client.rank(RankRequest.builder(2).candidates("green", "red").build());
        assertEquals(Set.of("green", "red"), new HashSet<>(slate.arms()));
        assertEquals(1, client.reward(slate.position(1).decisionId(), 1).accepted());
        RewardResponse second = client.rewards(List.of(new Reward(slate.position(2).decisionId(), 0),
                new Reward(slate.position(1).decisionId(), 1)));
        assertEquals(List.of("accepted", "duplicate"),
                second.results().stream().map(RewardResponse.Result::outcome).toList());
        assertEquals(before + 2, client.stats().totals().rewards());
    }

    @Test
    void badSlatesAreRefusedWithTheRuntimesField() {
        CroupierApiException tooMany = assertThrows(CroupierApiException.InvalidRequestException.class,
                () -> client.rank(RankRequest.builder(3).candidates("green", "red").build()));
        assertEquals("k", tooMany.field());
        CroupierApiException unknown = assertThrows(CroupierApiException.InvalidRequestException.class,
                () -> client.rank(RankRequest.builder(1).candidates("green", "mauve").build()));
        assertEquals("UnknownArm", unknown.error());
        assertEquals("candidates[1]", unknown.field());
        assertThrows(IllegalArgumentException.class, () -> RankRequest.builder(0));
    }

    @Test
    void asyncSlatesRunConcurrently() {
        List<CompletableFuture<Slate>> futures = java.util.stream.IntStream.range(0, 32)
                .mapToObj(i -> client.rankAsync(RankRequest.builder(2).unitId("u-" + i).build())).toList();
        Set<String> slateIds = new HashSet<>();
        for (CompletableFuture<Slate> future : futures) {
            Slate slate = future.join();
            assertEquals(2, slate.positions().size());
            slateIds.add(slate.slateId());
        }
        assertEquals(32, slateIds.size());
    }

    @Test
    void rankIsSentOnceAndTheFallbackSlateAnswersAnOutage() throws Exception {
        try (FaultProxy proxy = new FaultProxy(runtime.url)) {
            proxy.rule((path, n) -> FaultProxy.Fault.unavailable());
            CroupierClient strict = CroupierClient.builder(proxy.url)
                    .retry(new RetryPolicy(4, Duration.ofMillis(10), Duration.ofMillis(50))).build();
            assertThrows(CroupierApiException.RuntimeUnavailableException.class,
                    () -> strict.rank(RankRequest.builder(2).build()));
            assertEquals(1, proxy.count("/v1/rank"), "a rank is never retried");

            CroupierClient withFallback = CroupierClient.builder(proxy.url)
                    .fallbackSlate(List.of("red", "blue", "green")).build();
            Slate slate = withFallback.rank(RankRequest.builder(2).build());
            assertTrue(slate.fallback());
            assertEquals(List.of("red", "blue"), slate.arms());
            assertNull(slate.slateId());
            assertNull(slate.position(1).decisionId());
            assertTrue(Double.isNaN(slate.position(2).propensity()));
            assertTrue(slate.fallbackReason().contains("503 Unavailable"), slate.fallbackReason());
            assertEquals(List.of("blue", "green"), withFallback.rank(RankRequest.builder(3)
                    .candidates("green", "blue").build()).arms(), "restricted to the candidates, in the fallback order");
        }
    }
}
