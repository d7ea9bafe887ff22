package dev.croupier.client;

import java.util.Map;

/**
 * A unit's variant from the experiment's runtime, with exactly one target: a static {@code payload}, a
 * DecisionPolicy's {@code decision} (reward it at that policy's runtime with its decisionId), or a ModelDeployment
 * version's {@code model} route.
 *
 * @param variant the variant the unit gets
 * @param experimentVersion the served configuration of the Experiment
 * @param epoch the split's fingerprint (exposures and outcomes count per epoch)
 * @param counted whether the unit counts in the current epoch's statistics
 * @param payload a static payload target, or null
 * @param decision a DecisionPolicy target's decision, or null
 * @param model a ModelDeployment version target's route, or null
 */
public record Assignment(
        String variant,
        String experimentVersion,
        String epoch,
        boolean counted,
        Map<String, Object> payload,
        PolicyDecision decision,
        ModelRoute model) {

    /**
     * @param policy metadata.name of the DecisionPolicy
     * @param decisionId send it back with the reward to the policy's runtime
     * @param arm the arm the policy chose
     * @param probabilities the policy's probability of every eligible arm
     * @param policyVersion the policy configuration that decided
     */
    public record PolicyDecision(
            String policy, String decisionId, String arm, Map<String, Double> probabilities, String policyVersion) {}

    /**
     * Send the unit's inference requests with header {@code header: value}; the model router routes them to the
     * version.
     */
    public record ModelRoute(String name, int version, String header, String value) {}
}
