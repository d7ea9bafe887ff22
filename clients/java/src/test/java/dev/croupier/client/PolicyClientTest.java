package dev.croupier.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Decide, rewards, stats, errors, retries and the fallback arm against a real policy runtime process. */
class PolicyClientTest {
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

    @Test
    void decideAnswersAnArmDrawnFromItsProbabilityVector() {
        Decision decision = client.decide(DecideRequest.builder().unitId("player-42").build());
        assertFalse(decision.fallback());
        assertNull(decision.fallbackReason());
        assertEquals(Set.of("blue", "green", "red"), decision.probabilities().keySet());
        assertEquals(1.0, decision.probabilities().values().stream().mapToDouble(Double::doubleValue).sum(), 1e-9);
        assertTrue(decision.probabilities().containsKey(decision.arm()));
        assertEquals(decision.probabilities().get(decision.arm()), decision.propensity());
        assertTrue(decision.policyVersion().startsWith("g1-"), decision.policyVersion());
        assertFalse(decision.decisionId().isEmpty());
    }

    @Test
    void candidatesRestrictTheChoice() {
        for (int i = 0; i < 20; i++) {
            Decision decision = client.decide(DecideRequest.builder().candidates("green", "red").build());
            assertEquals(Set.of("green", "red"), decision.probabilities().keySet());
            assertTrue(Set.of("green", "red").contains(decision.arm()));
        }
    }

    @Test
    void badRequestsRaiseTypedErrorsWithTheRuntimesCodeAndField() {
        CroupierApiException unknownArm = assertThrows(CroupierApiException.InvalidRequestException.class,
                () -> client.decide(DecideRequest.builder().candidates("green", "purple").build()));
        assertEquals(422, unknownArm.status());
        assertEquals("UnknownArm", unknownArm.error());
        assertEquals("candidates[1]", unknownArm.field());
        assertTrue(unknownArm.runtimeMessage().contains("purple"), unknownArm.runtimeMessage());

        CroupierApiException unknownDecision = assertThrows(CroupierApiException.UnknownDecisionException.class,
                () -> client.reward("no-such-decision", 1));
        assertEquals(404, unknownDecision.status());
        assertEquals("UnknownDecision", unknownDecision.error());

        Decision decision = client.decide(DecideRequest.empty());
        CroupierApiException invalid = assertThrows(CroupierApiException.InvalidRequestException.class,
                () -> client.reward(decision.decisionId(), 0.5));
        assertEquals("InvalidReward", invalid.error());
        assertEquals("reward", invalid.field());
        // Nothing changed: the decision still takes its reward.
        assertEquals(1, client.reward(decision.decisionId(), 1).accepted());
    }

    @Test
    void rewardsAreAcknowledgedOnceAndDuplicatesSaySo() {
        long before = client.stats().totals().rewards();
        Decision decision = client.decide(DecideRequest.builder().unitId("u-1").build());
        RewardResponse first = client.reward(decision.decisionId(), 1);
        assertEquals(1, first.accepted());
        assertEquals(List.of(new RewardResponse.Result(decision.decisionId(), "accepted")), first.results());
        RewardResponse again = client.reward(decision.decisionId(), 0);
        assertEquals(0, again.accepted());
        assertEquals(1, again.duplicates());
        assertEquals("duplicate", again.results().get(0).outcome());
        assertEquals(before + 1, client.stats().totals().rewards());
    }

    @Test
    void aRewardBatchIsValidatedAsAWhole() {
        Decision a = client.decide(DecideRequest.empty());
        Decision b = client.decide(DecideRequest.empty());
        CroupierApiException error = assertThrows(CroupierApiException.UnknownDecisionException.class,
                () -> client.rewards(List.of(new Reward(a.decisionId(), 1), new Reward("missing", 1),
                        new Reward(b.decisionId(), 0))));
        assertEquals("rewards[1].decisionId", error.field());
        RewardResponse response = client.rewards(List.of(new Reward(a.decisionId(), 1), new Reward(b.decisionId(), 0)));
        assertEquals(2, response.accepted(), "the refused batch stored nothing");
        assertThrows(IllegalArgumentException.class, () -> client.rewards(List.of()));
    }

    @Test
    void asyncVariantsRunConcurrently() {
        List<CompletableFuture<Decision>> futures = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            futures.add(client.decideAsync(DecideRequest.builder().unitId("async-" + i).build()));
        }
        Set<String> ids = new HashSet<>();
        List<CompletableFuture<RewardResponse>> rewards = new ArrayList<>();
        for (CompletableFuture<Decision> future : futures) {
            Decision decision = future.join();
            ids.add(decision.decisionId());
            rewards.add(client.rewardAsync(decision.decisionId(), decision.arm().equals("blue") ? 1 : 0));
        }
        assertEquals(64, ids.size());
        assertEquals(64, rewards.stream().mapToInt(f -> f.join().accepted()).sum());
        PolicyStats stats = client.statsAsync().join();
        assertEquals("ThompsonSampling", stats.algorithm());
        assertEquals("banner", stats.policy().name());
        assertEquals(List.of("blue", "green", "red"), stats.arms().stream().map(PolicyStats.ArmStats::name).toList());
        assertTrue(stats.totals().decisions() >= 64);
        CroupierException wrongKind = assertThrows(CroupierException.class, client::experimentStats);
        assertTrue(wrongKind.getMessage().contains("does not serve an Experiment"), wrongKind.getMessage());
        // An async failure completes the future exceptionally with the typed exception.
        CompletableFuture<Decision> bad = client.decideAsync(DecideRequest.builder().candidates("nope").build());
        Throwable cause = assertThrows(Exception.class, bad::join).getCause();
        assertInstanceOf(CroupierApiException.InvalidRequestException.class, cause);
    }

    @Test
    void pooledConnectionsTheRuntimeClosedWhileIdleDoNotFailDecides() {
        CroupierClient pooled = CroupierClient.create(runtime.url);
        List<CompletableFuture<Decision>> first = new ArrayList<>();
        for (int i = 0; i < 32; i++) {
            first.add(pooled.decideAsync(DecideRequest.empty()));
        }
        first.forEach(CompletableFuture::join); // up to 32 connections now idle in the pool
        // The runtime closes connections idle for 5 s (CROUPIER_RUNTIME_KEEP_ALIVE_TIMEOUT_SECONDS). A decide is
        // never retried, so the client must not send one on a connection the runtime closed.
        RuntimeProcess.sleep(6500);
        List<CompletableFuture<Decision>> second = new ArrayList<>();
        for (int i = 0; i < 32; i++) {
            second.add(pooled.decideAsync(DecideRequest.empty()));
        }
        for (CompletableFuture<Decision> future : second) {
            assertFalse(future.join().decisionId().isEmpty());
        }
    }

    @Test
    void asyncBurstsWaitForTheConcurrencyLimit() throws Exception {
        try (FaultProxy proxy = new FaultProxy(runtime.url)) {
            proxy.rule((path, n) -> FaultProxy.Fault.delay(100));
            CroupierClient limited = CroupierClient.builder(proxy.url).maxConcurrentRequests(4).build();
            List<CompletableFuture<Decision>> futures = new ArrayList<>();
            for (int i = 0; i < 24; i++) {
                futures.add(limited.decideAsync(DecideRequest.empty()));
            }
            assertEquals(24, futures.stream().map(CompletableFuture::join).map(Decision::decisionId).distinct().count());
            assertEquals(4, proxy.maxConcurrent(), "never more than 4 in flight, and the limit was used");
        }
    }

    @Test
    void theFallbackArmAnswersWhenTheRuntimeIsUnreachable() throws Exception {
        String nowhere = "http://127.0.0.1:" + RuntimeProcess.freePort();
        CroupierClient withFallback = CroupierClient.builder(nowhere).fallbackArm("blue").build();
        Decision decision = withFallback.decide(DecideRequest.builder().unitId("p").build());
        assertTrue(decision.fallback());
        assertEquals("blue", decision.arm());
        assertNull(decision.decisionId());
        assertTrue(decision.fallbackReason().contains("could not be reached"), decision.fallbackReason());
        assertTrue(Double.isNaN(decision.propensity()));
        // The fallback respects candidates that leave it out.
        assertEquals("red", withFallback.decide(DecideRequest.builder().candidates("red", "green").build()).arm());
        // Bad input still throws, with or without a runtime.
        assertThrows(IllegalArgumentException.class, () -> withFallback.reward(null, 1));

        CroupierTransportException unreachable = assertThrows(CroupierTransportException.class,
                () -> CroupierClient.create(nowhere).decide(DecideRequest.empty()));
        assertFalse(unreachable.timedOut());
    }

    @Test
    void decideIsSentOnceAndFallsBackOnA503WhileRewardsAreRetried() throws Exception {
        try (FaultProxy proxy = new FaultProxy(runtime.url)) {
            proxy.rule((path, n) -> n <= 2 ? FaultProxy.Fault.unavailable() : FaultProxy.Fault.FORWARD);
            CroupierClient strict = CroupierClient.builder(proxy.url)
                    .retry(new RetryPolicy(4, Duration.ofMillis(10), Duration.ofMillis(50))).build();
            CroupierApiException error = assertThrows(CroupierApiException.RuntimeUnavailableException.class,
                    () -> strict.decide(DecideRequest.empty()));
            assertEquals("Unavailable", error.error());
            assertEquals(1, proxy.count("/v1/decide"), "a decide is never retried");

            CroupierClient fallback = CroupierClient.builder(proxy.url).fallbackArm("green").build();
            Decision decision = fallback.decide(DecideRequest.empty());
            assertTrue(decision.fallback());
            assertTrue(decision.fallbackReason().contains("503 Unavailable"), decision.fallbackReason());
            assertEquals(2, proxy.count("/v1/decide"));
            Decision real = fallback.decide(DecideRequest.empty());
            assertFalse(real.fallback(), "the runtime answers again: a real decision");

            RewardResponse response = strict.reward(real.decisionId(), 1);
            assertEquals(1, response.accepted());
            assertEquals(3, proxy.count("/v1/rewards"), "two 503s, then delivered");
        }
    }

    @Test
    void aSlowRuntimeTimesOutAndTheFallbackAnswersWithinTheTimeout() throws Exception {
        try (FaultProxy proxy = new FaultProxy(runtime.url)) {
            proxy.rule((path, n) -> FaultProxy.Fault.delay(2000));
            CroupierClient slow = CroupierClient.builder(proxy.url).requestTimeout(Duration.ofMillis(300)).build();
            CroupierTransportException timeout = assertThrows(CroupierTransportException.class,
                    () -> slow.decide(DecideRequest.empty()));
            assertTrue(timeout.timedOut());
            CroupierClient fallback = CroupierClient.builder(proxy.url).requestTimeout(Duration.ofMillis(300))
                    .fallbackArm("red").build();
            long start = System.nanoTime();
            Decision decision = fallback.decide(DecideRequest.empty());
            long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertTrue(decision.fallback());
            assertEquals("red", decision.arm());
            assertTrue(millis < 1500, "answered after " + millis + " ms");
        }
    }

    @Test
    void contextIsSentByNameOrInFeatureOrder() throws Exception {
        Map<String, Object> spec = new java.util.LinkedHashMap<>(RuntimeProcess.thompsonSpec());
        spec.put("algorithm", Map.of("type", "LinUCB", "linUCB", Map.of("alpha", 1.0)));
        spec.put("context", Map.of("features", List.of("age", "is_mobile")));
        try (RuntimeProcess linucb = RuntimeProcess.policy(dir.resolve("linucb"), spec)) {
            CroupierClient contextual = CroupierClient.create(linucb.url);
            Decision byName = contextual.decide(DecideRequest.builder().context(Map.of("age", 3, "is_mobile", 1))
                    .build());
            assertEquals(3, byName.probabilities().size());
            Decision byOrder = contextual.decide(DecideRequest.builder().context(List.of(3.0, 0.0)).build());
            assertEquals(3, byOrder.probabilities().size());
            CroupierApiException missing = assertThrows(CroupierApiException.InvalidRequestException.class,
                    () -> contextual.decide(DecideRequest.builder().context(Map.of("age", 3)).build()));
            assertEquals("InvalidContext", missing.error());
            assertTrue(missing.field().startsWith("context"), missing.field());
        }
    }
}
