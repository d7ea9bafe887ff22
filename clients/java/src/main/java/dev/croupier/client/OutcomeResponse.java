package dev.croupier.client;

import java.util.List;

/**
 * The runtime's answer to outcomes, sent once every accepted outcome is durable.
 *
 * @param accepted outcomes stored and counted by this request
 * @param results per outcome, in request order
 */
public record OutcomeResponse(int accepted, List<Result> results) {
    public OutcomeResponse {
        results = results == null ? List.of() : List.copyOf(results);
    }

    /**
     * @param unitId the unit
     * @param eventId the outcome's eventId, if it had one
     * @param outcome {@code accepted}, {@code duplicate}, {@code unexposed}, {@code late} or {@code notCounted}
     */
    public record Result(String unitId, String eventId, String outcome) {}
}
