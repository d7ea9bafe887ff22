package dev.croupier.client;

import java.util.List;

/**
 * {@link RewardBatcher#close} could not deliver every accepted reward before its close timeout (the runtime stayed
 * unreachable or unavailable): the rewards are here, in order, for the caller to keep or send later.
 */
public final class UndeliveredRewardsException extends CroupierException {
    private static final long serialVersionUID = 1L;

    private final transient List<Reward> rewards;

    public UndeliveredRewardsException(List<Reward> rewards, Throwable lastError) {
        super(rewards.size() + " accepted rewards were not delivered before the close timeout"
                + (lastError == null ? "" : "; last error: " + lastError.getMessage()), lastError);
        this.rewards = List.copyOf(rewards);
    }

    /** The rewards not delivered, in the order they were added. */
    public List<Reward> rewards() {
        return rewards;
    }
}
