package dev.croupier.client;

import java.util.List;

/**
 * The runtime's answer to exposures, sent once every recorded exposure is durable.
 *
 * @param recorded exposures recorded by this request
 * @param results per exposure, in request order
 */
public record ExposureResponse(int recorded, List<Result> results) {
    public ExposureResponse {
        results = results == null ? List.of() : List.copyOf(results);
    }

    /**
     * @param unitId the unit
     * @param outcome {@code recorded}, {@code duplicate}, {@code mismatch}, {@code stale} or {@code notCounting}
     * @param variant the variant the runtime assigns the unit
     */
    public record Result(String unitId, String outcome, String variant) {}
}
