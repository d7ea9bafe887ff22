package dev.croupier.client;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A ranked slate, top first, or the client's fallback slate when the runtime could not rank.
 *
 * @param slateId identifies the slate (logged with each position's decision); null for a fallback slate
 * @param policyVersion the policy configuration that ranked; null for a fallback slate
 * @param positions the positions, top first
 * @param fallback true when the runtime was unreachable or unavailable and the client answered its fallback slate
 * @param fallbackReason why the fallback was used (the error); null otherwise
 */
public record Slate(String slateId, String policyVersion, List<Position> positions, boolean fallback,
        String fallbackReason) {

    public Slate {
        positions = positions == null ? List.of() : List.copyOf(positions);
    }

    /** The arms, top first. */
    public List<String> arms() {
        return positions.stream().map(Position::arm).toList();
    }

    /** The position numbered {@code position} (from 1). */
    public Position position(int position) {
        if (position < 1 || position > positions.size()) {
            throw new IndexOutOfBoundsException("position " + position + " of a slate of " + positions.size());
        }
        return positions.get(position - 1);
    }

    /**
     * One position: a decision of its own. Reward it (a click on this position) with its decisionId.
     *
     * @param position from 1 (top)
     * @param arm the arm placed here
     * @param decisionId send it back with this position's reward; null in a fallback slate
     * @param propensity the probability of this arm at this position given the positions above; NaN in a fallback
     * @param probabilities the conditional distribution this position was drawn from (every eligible arm not placed
     *     above); empty in a fallback slate
     */
    public record Position(int position, String arm, String decisionId, double propensity,
            Map<String, Double> probabilities) {
        public Position {
            probabilities = probabilities == null ? Map.of()
                    : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(probabilities));
        }
    }

    /**
     * The fallback slate: the configured order, restricted to the request's candidates when it has some (the
     * candidates the order leaves out follow in their own order), cut to k.
     */
    static Slate fallback(List<String> order, RankRequest request, Throwable cause) {
        List<String> arms = new ArrayList<>();
        List<String> candidates = request.getCandidates();
        for (String arm : order) {
            if (candidates == null || candidates.contains(arm)) {
                arms.add(arm);
            }
        }
        if (candidates != null) {
            for (String arm : candidates) {
                if (!arms.contains(arm)) {
                    arms.add(arm);
                }
            }
        }
        List<Position> positions = new ArrayList<>();
        for (int i = 0; i < Math.min(request.getK(), arms.size()); i++) {
            positions.add(new Position(i + 1, arms.get(i), null, Double.NaN, Map.of()));
        }
        return new Slate(null, null, positions, true, String.valueOf(cause.getMessage()));
    }
}
