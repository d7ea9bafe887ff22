package dev.croupier.client;

import java.util.Map;

/**
 * The runtime's decision, or the client's configured fallback arm when the runtime could not decide.
 *
 * @param decisionId send it back with the reward; null for a fallback decision (nothing was logged to reward)
 * @param arm the chosen arm
 * @param probabilities every eligible arm's probability at decision time (the arm was drawn from it); empty for a
 *     fallback decision
 * @param policyVersion the policy configuration that decided; null for a fallback decision
 * @param fallback true when the runtime was unreachable or unavailable and the client answered its fallback arm
 * @param fallbackReason why the fallback was used (the error); null otherwise
 */
public record Decision(
        String decisionId,
        String arm,
        Map<String, Double> probabilities,
        String policyVersion,
        boolean fallback,
        String fallbackReason) {

    public Decision {
        probabilities = probabilities == null ? Map.of() : java.util.Collections.unmodifiableMap(
                new java.util.LinkedHashMap<>(probabilities));
    }

    /** The probability the chosen arm had (its propensity); NaN for a fallback decision. */
    public double propensity() {
        Double p = probabilities.get(arm);
        return p == null ? Double.NaN : p;
    }

    static Decision fallback(String arm, Throwable cause) {
        return new Decision(null, arm, Map.of(), null, true, String.valueOf(cause.getMessage()));
    }
}
