package dev.croupier.client;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.Objects;

/**
 * One observation of a metric for a unit. With an {@code eventId} the outcome is idempotent (sent again it is a
 * {@code duplicate}), and the client retries it after a transient failure; without one it is never retried.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Outcome(String unitId, String metric, double value, String eventId) {
    public Outcome {
        Objects.requireNonNull(unitId, "unitId");
        Objects.requireNonNull(metric, "metric");
        if (!Double.isFinite(value)) {
            throw new IllegalArgumentException("outcome value must be a finite number, got " + value);
        }
    }

    public static Outcome of(String unitId, String metric, double value, String eventId) {
        return new Outcome(unitId, metric, value, eventId);
    }
}
