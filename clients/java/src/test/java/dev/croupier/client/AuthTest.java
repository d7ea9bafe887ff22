package dev.croupier.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The bearer token against a runtime with authentication on (tokens in a mounted folder, scopes from the spec). */
class AuthTest {
    @TempDir
    Path dir;

    @Test
    void theTokenIsSentAndAuthErrorsAreTyped() throws Exception {
        Path secret = Files.createDirectories(dir.resolve("auth"));
        Files.writeString(secret.resolve("app"), "tok-app-3b9e1d\n");
        Files.writeString(secret.resolve("admin"), "tok-admin-77c0a2\n");
        Map<String, Object> spec = new LinkedHashMap<>(RuntimeProcess.thompsonSpec());
        spec.put("auth", Map.of("tokens", List.of(Map.of("key", "app", "scopes", List.of("decide", "rewards")),
                Map.of("key", "admin", "scopes", List.of("admin")))));
        try (RuntimeProcess runtime = RuntimeProcess.policy(dir, spec, "--auth-dir", secret.toString())) {
            CroupierApiException missing = assertThrows(CroupierApiException.AuthenticationException.class,
                    () -> CroupierClient.create(runtime.url).decide(DecideRequest.empty()));
            assertEquals(401, missing.status());
            assertEquals("Unauthorized", missing.error());

            CroupierApiException wrong = assertThrows(CroupierApiException.AuthenticationException.class,
                    () -> CroupierClient.builder(runtime.url).token("tok-wrong").build().decide(DecideRequest.empty()));
            assertEquals(401, wrong.status());

            CroupierClient app = CroupierClient.builder(runtime.url).token("tok-app-3b9e1d").fallbackArm("blue")
                    .build();
            Decision decision = app.decide(DecideRequest.empty());
            assertFalse(decision.fallback(), "a refused token is not an outage: " + decision.fallbackReason());
            assertEquals(1, app.reward(decision.decisionId(), 1).accepted());
            CroupierApiException forbidden = assertThrows(CroupierApiException.AuthenticationException.class,
                    app::stats);
            assertEquals(403, forbidden.status());
            assertEquals("Forbidden", forbidden.error());
            assertTrue(forbidden.runtimeMessage().contains("admin scope"), forbidden.runtimeMessage());

            // A token supplier is read for every request (a rotated token needs no new client).
            AtomicReference<String> token = new AtomicReference<>("tok-app-3b9e1d");
            CroupierClient rotating = CroupierClient.builder(runtime.url).token(token::get).build();
            assertThrows(CroupierApiException.AuthenticationException.class, rotating::stats);
            token.set("tok-admin-77c0a2");
            assertEquals(1, rotating.stats().totals().rewards());
        }
    }
}
