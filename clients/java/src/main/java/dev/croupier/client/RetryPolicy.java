package dev.croupier.client;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;

/**
 * How the client retries idempotent calls (rewards by decisionId, outcomes that all carry an eventId, exposures,
 * stats) after a transport failure or a transient answer (408, 429, 5xx): exponential backoff with jitter. Decide,
 * rank and assign are never retried: a retry could log a second decision (use a fallback arm instead).
 *
 * @param maxAttempts attempts in all, including the first (1: no retry)
 * @param initialBackoff the wait before the first retry; each further retry waits twice as long, up to maxBackoff
 * @param maxBackoff the longest wait between two attempts
 */
public record RetryPolicy(int maxAttempts, Duration initialBackoff, Duration maxBackoff) {
    public RetryPolicy {
        if (maxAttempts < 1) {
            throw new IllegalArgumentException("maxAttempts must be >= 1, got " + maxAttempts);
        }
        Objects.requireNonNull(initialBackoff, "initialBackoff");
        Objects.requireNonNull(maxBackoff, "maxBackoff");
        if (initialBackoff.isNegative() || maxBackoff.compareTo(initialBackoff) < 0) {
            throw new IllegalArgumentException("backoffs must satisfy 0 <= initialBackoff <= maxBackoff");
        }
    }

    /** 4 attempts, waiting about 50 ms, 100 ms, 200 ms between them (capped at 2 s). */
    public static RetryPolicy defaults() {
        return new RetryPolicy(4, Duration.ofMillis(50), Duration.ofSeconds(2));
    }

    /** No retry. */
    public static RetryPolicy none() {
        return new RetryPolicy(1, Duration.ZERO, Duration.ZERO);
    }

    /**
     * The wait before retry number {@code retry} (1 for the first retry): the exponential step, of which a random
     * half is kept ("equal jitter"), so many clients do not retry in lockstep.
     */
    public Duration backoff(int retry) {
        long base = initialBackoff.toMillis();
        long step = Math.min(maxBackoff.toMillis(), base << Math.min(retry - 1, 30));
        long half = step / 2;
        return Duration.ofMillis(half + (half > 0 ? ThreadLocalRandom.current().nextLong(half + 1) : 0));
    }
}
