package dev.croupier.client;

/** {@link RewardBatcher#add} refused a reward: the queue holds its capacity of rewards not yet delivered. */
public final class RewardQueueFullException extends CroupierException {
    private static final long serialVersionUID = 1L;

    public RewardQueueFullException(int capacity) {
        super("the reward queue is full (" + capacity + " rewards not yet delivered); the reward was not accepted: "
                + "send it later, or raise RewardBatcher.Builder.capacity");
    }
}
