package dev.croupier.client;

import java.util.List;

/**
 * The runtime's answer to rewards, sent only once every accepted reward is durable.
 *
 * @param accepted rewards stored and learned by this request
 * @param duplicates rewards ignored because their decision already had one (a retried request counts its own
 *     earlier delivery here)
 * @param results one entry per reward, in request order
 */
public record RewardResponse(int accepted, int duplicates, List<Result> results) {
    public RewardResponse {
        results = results == null ? List.of() : List.copyOf(results);
    }

    /**
     * @param decisionId the decision the reward was for
     * @param outcome {@code accepted} or {@code duplicate}
     */
    public record Result(String decisionId, String outcome) {}
}
