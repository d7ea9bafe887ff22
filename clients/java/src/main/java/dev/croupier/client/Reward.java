package dev.croupier.client;

/**
 * The reward of one decision: Binary policies take 0 or 1, Continuous ones any finite number within ±1e12.
 *
 * @param decisionId the decisionId a decide (or a slate position) returned
 * @param reward the reward
 */
public record Reward(String decisionId, double reward) {
    public Reward {
        if (decisionId == null || decisionId.isEmpty()) {
            throw new IllegalArgumentException("decisionId is " + (decisionId == null ? "null" : "empty")
                    + ": a reward needs the decisionId of a runtime decision (a fallback decision has none)");
        }
        if (!Double.isFinite(reward)) {
            throw new IllegalArgumentException("reward must be a finite number, got " + reward);
        }
    }
}
