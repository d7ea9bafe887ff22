package dev.croupier.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The batching reward sender against a real policy runtime: batches, retries, refusals, restarts, close. */
class RewardBatcherTest {
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

    static Thread started(Runnable body) {
        Thread thread = new Thread(body);
        thread.start();
        return thread;
    }

    static List<Decision> decide(CroupierClient client, int n) {
        List<CompletableFuture<Decision>> futures = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            futures.add(client.decideAsync(DecideRequest.empty()));
        }
        return futures.stream().map(CompletableFuture::join).toList();
    }

    @Test
    void rewardsFromManyThreadsAreDeliveredInBatchesAndCloseFlushes() throws Exception {
        List<Decision> decisions = decide(client, 1000);
        long before = client.stats().totals().rewards();
        try (FaultProxy proxy = new FaultProxy(runtime.url)) {
            CroupierClient viaProxy = CroupierClient.create(proxy.url);
            RewardBatcher batcher = RewardBatcher.builder(viaProxy).maxBatchSize(250)
                    .flushInterval(Duration.ofSeconds(30)).build();
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int offset = t;
                threads.add(started(() -> {
                    for (int i = offset; i < decisions.size(); i += 4) {
                        batcher.add(decisions.get(i).decisionId(), i % 3 == 0 ? 1 : 0);
                    }
                }));
            }
            for (Thread thread : threads) {
                thread.join();
            }
            batcher.close(); // the interval is 30 s: whatever is left goes out now
            assertEquals(1000, batcher.accepted());
            assertEquals(0, batcher.pending());
            assertEquals(4, proxy.count("/v1/rewards"), "1000 rewards in batches of 250");
            assertThrows(IllegalStateException.class, () -> batcher.add(decisions.get(0).decisionId(), 1));
        }
        assertEquals(before + 1000, client.stats().totals().rewards());
    }

    @Test
    void theFlushIntervalSendsAQuietQueue() {
        Decision decision = client.decide(DecideRequest.empty());
        try (RewardBatcher batcher = RewardBatcher.builder(client).flushInterval(Duration.ofMillis(100)).build()) {
            batcher.add(decision.decisionId(), 1);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (batcher.accepted() < 1 && System.nanoTime() < deadline) {
                RuntimeProcess.sleep(20);
            }
            assertEquals(1, batcher.accepted(), "sent without flush() or close()");
        }
        assertEquals("duplicate", client.reward(decision.decisionId(), 1).results().get(0).outcome());
    }

    @Test
    void failedFlushesAreRetriedUntilDelivered() throws Exception {
        List<Decision> decisions = decide(client, 100);
        try (FaultProxy proxy = new FaultProxy(runtime.url)) {
            proxy.rule((path, n) -> n <= 3 ? FaultProxy.Fault.unavailable() : FaultProxy.Fault.FORWARD);
            try (RewardBatcher batcher = RewardBatcher.builder(CroupierClient.create(proxy.url))
                    .backoff(new RetryPolicy(1, Duration.ofMillis(20), Duration.ofMillis(100))).build()) {
                for (Decision decision : decisions) {
                    batcher.add(decision.decisionId(), 1);
                }
                batcher.flush().get(20, TimeUnit.SECONDS);
                assertEquals(100, batcher.accepted());
                assertEquals(3, batcher.failedRequests());
                assertEquals(4, proxy.count("/v1/rewards"));
            }
        }
    }

    @Test
    void aRewardTheRuntimeRefusesIsHandedBackAndTheRestDelivered() throws Exception {
        List<Decision> decisions = decide(client, 5);
        List<RewardBatcher.Rejected> rejected = Collections.synchronizedList(new ArrayList<>());
        try (RewardBatcher batcher = RewardBatcher.builder(client).onRejected(rejected::add).build()) {
            batcher.add(decisions.get(0).decisionId(), 1);
            batcher.add("not-a-decision", 1);
            batcher.add(decisions.get(1).decisionId(), 1);
            batcher.add(decisions.get(2).decisionId(), 0.5); // Binary policy: refused
            batcher.add(decisions.get(3).decisionId(), 0);
            batcher.flush().get(20, TimeUnit.SECONDS);
            assertEquals(3, batcher.accepted());
            assertEquals(2, batcher.rejected());
        }
        assertEquals(2, rejected.size());
        // The runtime checks the values before it joins the decisions: the refusals come in that order.
        java.util.Map<String, CroupierApiException> byDecision = new java.util.HashMap<>();
        rejected.forEach(r -> byDecision.put(r.reward().decisionId(), r.error()));
        assertEquals("UnknownDecision", byDecision.get("not-a-decision").error());
        assertEquals("rewards[1].decisionId", byDecision.get("not-a-decision").field());
        assertEquals("InvalidReward", byDecision.get(decisions.get(2).decisionId()).error());
        assertEquals("rewards[3].reward", byDecision.get(decisions.get(2).decisionId()).field());
    }

    @Test
    void aFullQueueRefusesAndCloseHandsBackWhatItCouldNotDeliver() throws Exception {
        String nowhere = "http://127.0.0.1:" + RuntimeProcess.freePort();
        RewardBatcher batcher = RewardBatcher.builder(CroupierClient.create(nowhere)).capacity(10)
                .flushInterval(Duration.ofMillis(10)).closeTimeout(Duration.ofMillis(500))
                .backoff(new RetryPolicy(1, Duration.ofMillis(20), Duration.ofMillis(50))).build();
        for (int i = 0; i < 10; i++) {
            batcher.add("d-" + i, 1);
        }
        RewardQueueFullException full = assertThrows(RewardQueueFullException.class, () -> batcher.add("d-10", 1));
        assertTrue(full.getMessage().contains("the reward queue is full (10 rewards not yet delivered)"),
                full.getMessage());
        assertEquals(10, batcher.pending());
        UndeliveredRewardsException undelivered = assertThrows(UndeliveredRewardsException.class, batcher::close);
        assertEquals(10, undelivered.rewards().size());
        assertEquals("d-0", undelivered.rewards().get(0).decisionId());
        assertEquals("d-9", undelivered.rewards().get(9).decisionId());
        assertTrue(undelivered.getMessage().contains("could not be reached"), undelivered.getMessage());
        assertTrue(batcher.failedRequests() >= 2);
    }

    @Test
    void closeGivingUpOnABatchInFlightHandsItBackAndResendingItIsSafe() throws Exception {
        List<Decision> decisions = decide(client, 5);
        List<Throwable> uncaught = Collections.synchronizedList(new ArrayList<>());
        Thread.UncaughtExceptionHandler previous = Thread.getDefaultUncaughtExceptionHandler();
        Thread.setDefaultUncaughtExceptionHandler((thread, error) -> uncaught.add(error));
        try (FaultProxy proxy = new FaultProxy(runtime.url)) {
            proxy.rule((path, n) -> FaultProxy.Fault.delay(2500));
            RewardBatcher batcher = RewardBatcher.builder(CroupierClient.create(proxy.url))
                    .flushInterval(Duration.ofMillis(10)).closeTimeout(Duration.ofMillis(300)).build();
            for (Decision decision : decisions) {
                batcher.add(decision.decisionId(), 1);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (proxy.count("/v1/rewards") == 0 && System.nanoTime() < deadline) {
                RuntimeProcess.sleep(5);
            }
            UndeliveredRewardsException undelivered = assertThrows(UndeliveredRewardsException.class, batcher::close);
            assertEquals(5, undelivered.rewards().size());
            RuntimeProcess.sleep(3000); // the slow batch arrives after all; the worker must not trip over it
            RewardResponse again = client.rewards(undelivered.rewards());
            assertEquals(5, again.duplicates(), "the batch in flight was delivered: re-sending it changes nothing");
            assertEquals(List.of(), uncaught, "the worker finished without an error");
        } finally {
            Thread.setDefaultUncaughtExceptionHandler(previous);
        }
    }

    @Test
    void noAcceptedRewardIsLostWhenTheRuntimeIsKilledAndRestarted() throws Exception {
        Path restartDir = dir.resolve("restart");
        try (RuntimeProcess restarted = RuntimeProcess.policy(restartDir, RuntimeProcess.thompsonSpec())) {
            CroupierClient direct = CroupierClient.create(restarted.url);
            List<Decision> decisions = decide(direct, 600);
            RuntimeProcess.sleep(300); // the decision log's commit interval is 50 ms: every decision is on disk
            CountDownLatch halfway = new CountDownLatch(1);
            try (RewardBatcher batcher = RewardBatcher.builder(direct).maxBatchSize(20)
                    .flushInterval(Duration.ofMillis(5)).closeTimeout(Duration.ofSeconds(60))
                    .backoff(new RetryPolicy(1, Duration.ofMillis(50), Duration.ofMillis(200))).build()) {
                Thread producer = started(() -> {
                    for (int i = 0; i < decisions.size(); i++) {
                        batcher.add(decisions.get(i).decisionId(), 1);
                        if (i == 300) {
                            halfway.countDown();
                        }
                        RuntimeProcess.sleep(i % 20 == 0 ? 5 : 0);
                    }
                });
                halfway.await(30, TimeUnit.SECONDS);
                restarted.kill();
                RuntimeProcess.sleep(300);
                restarted.start();
                producer.join();
                batcher.flush().get(60, TimeUnit.SECONDS);
                assertTrue(batcher.failedRequests() >= 1, "the kill failed at least one batch");
                assertEquals(600, batcher.accepted() + batcher.duplicates());
            }
            // Every reward is stored exactly once: sending each again is a duplicate, and the totals count 600.
            assertEquals(600, direct.stats().totals().rewards());
            for (int from = 0; from < 600; from += 200) {
                List<Reward> again = decisions.subList(from, from + 200).stream()
                        .map(d -> new Reward(d.decisionId(), 1)).toList();
                assertEquals(200, direct.rewards(again).duplicates());
            }
        }
    }
}
