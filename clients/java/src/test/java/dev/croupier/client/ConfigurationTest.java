package dev.croupier.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpClient;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Bad configuration is refused at once, naming the problem (no runtime needed). */
class ConfigurationTest {
    @Test
    void badBaseUrlsAndSettingsAreRefusedByName() {
        assertEquals("baseUrl must be an http(s) URL with a host, got ftp://runtime",
                assertThrows(IllegalArgumentException.class, () -> CroupierClient.builder("ftp://runtime"))
                        .getMessage());
        assertThrows(IllegalArgumentException.class, () -> CroupierClient.builder("runtime:8080"));
        assertEquals("requestTimeout must be positive, got PT0S", assertThrows(IllegalArgumentException.class,
                () -> CroupierClient.builder("http://r").requestTimeout(Duration.ZERO)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> CroupierClient.builder("http://r").maxConcurrentRequests(0));
        IllegalStateException both = assertThrows(IllegalStateException.class, () -> CroupierClient
                .builder("http://r").httpClient(HttpClient.newHttpClient()).connectTimeout(Duration.ofSeconds(1))
                .build());
        assertTrue(both.getMessage().contains("set one or the other"), both.getMessage());
        assertEquals("http://r:8080", CroupierClient.create("http://r:8080/").baseUrl());
    }

    @Test
    void batcherAndRetrySettingsAreChecked() {
        CroupierClient client = CroupierClient.create("http://127.0.0.1:9");
        assertThrows(IllegalArgumentException.class, () -> RewardBatcher.builder(client).maxBatchSize(1001));
        assertThrows(IllegalArgumentException.class, () -> RewardBatcher.builder(client).capacity(0));
        assertThrows(IllegalArgumentException.class, () -> RewardBatcher.builder(client).flushInterval(Duration.ZERO));
        assertThrows(IllegalArgumentException.class, () -> new RetryPolicy(0, Duration.ZERO, Duration.ZERO));
        assertThrows(IllegalArgumentException.class,
                () -> new RetryPolicy(3, Duration.ofSeconds(2), Duration.ofSeconds(1)));
        assertThrows(IllegalArgumentException.class, () -> new Reward("d", Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> new Outcome("u", "m", Double.POSITIVE_INFINITY, null));
    }

    @Test
    void backoffDoublesWithJitterUpToItsCap() {
        RetryPolicy policy = new RetryPolicy(10, Duration.ofMillis(100), Duration.ofMillis(1000));
        for (int i = 0; i < 200; i++) {
            long first = policy.backoff(1).toMillis();
            long third = policy.backoff(3).toMillis();
            long tenth = policy.backoff(10).toMillis();
            assertTrue(first >= 50 && first <= 100, "first " + first);
            assertTrue(third >= 200 && third <= 400, "third " + third);
            assertTrue(tenth >= 500 && tenth <= 1000, "capped " + tenth);
        }
    }

    @Test
    void apiErrorsMapToTheirTypes() {
        CroupierApiException plain = CroupierClient.apiError(502, "<html>bad gateway</html>".getBytes());
        assertTrue(plain instanceof CroupierApiException.RuntimeUnavailableException);
        assertEquals("HttpError", plain.error());
        assertTrue(plain.isTransient());
        CroupierApiException window = CroupierClient.apiError(409, ("{\"status\":409,\"error\":"
                + "\"AttributionWindowExpired\",\"message\":\"late by 3 s\",\"field\":\"decisionId\"}").getBytes());
        assertTrue(window instanceof CroupierApiException.AttributionWindowExpiredException);
        assertEquals("late by 3 s", window.runtimeMessage());
        assertEquals("decisionId", window.field());
        assertTrue(!window.isTransient());
    }
}
