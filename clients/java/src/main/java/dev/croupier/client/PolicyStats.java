package dev.croupier.client;

import java.util.List;
import java.util.Map;

/** A policy runtime's {@code GET /v1/stats}: what the operator polls for the DecisionPolicy's status. */
public record PolicyStats(
        PolicyRef policy,
        Long generation,
        String policyVersion,
        String algorithm,
        boolean paused,
        String backend,
        String replica,
        List<ArmStats> arms,
        Totals totals,
        String bestArm) {

    public record PolicyRef(String name, String namespace) {}

    /**
     * @param pulls decisions that chose the arm
     * @param rewards rewards learned for them (default rewards included)
     * @param mean mean learned reward, null before the first reward
     * @param probability probability of the arm now (non-contextual policies), else null
     * @param posterior the algorithm's per-arm parameters
     */
    public record ArmStats(
            String name,
            long pulls,
            long rewards,
            double rewardSum,
            Double mean,
            Double probability,
            Map<String, Object> posterior) {}

    public record Totals(long decisions, long rewards, long defaultRewards) {}
}
