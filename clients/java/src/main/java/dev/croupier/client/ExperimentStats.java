package dev.croupier.client;

import java.util.List;

/** An experiment runtime's {@code GET /v1/stats}: per-variant sufficient statistics of the current epoch. */
public record ExperimentStats(
        ExperimentRef experiment,
        Long generation,
        String experimentVersion,
        String epoch,
        double epochStartTime,
        String state,
        String backend,
        String replica,
        List<VariantStats> variants,
        long totalExposures) {

    public record ExperimentRef(String name, String namespace) {}

    public record VariantStats(String name, int weight, long exposures, List<MetricStats> metrics) {}

    /** Sufficient statistics of one metric in one variant: count, sum and sum of squares of the units' values. */
    public record MetricStats(String name, String type, String aggregation, long count, double sum, double sumSquares) {}
}
