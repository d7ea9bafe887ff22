package dev.croupier.client;

import java.util.List;
import java.util.Map;

/** Response bodies that the public types reshape. */
final class Wire {
    private Wire() {}

    record DecideResponse(String decisionId, String arm, Map<String, Double> probabilities, String policyVersion) {}

    record RankResponse(String slateId, String policyVersion, List<Slate.Position> slate) {}
}
