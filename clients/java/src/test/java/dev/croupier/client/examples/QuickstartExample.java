package dev.croupier.client.examples;

// The example docs/sdk-java.md quotes (between the markers); ExampleTest runs it against real runtimes and checks
// that the page quotes it verbatim.
// [example]
import dev.croupier.client.Assigner;
import dev.croupier.client.Assignment;
import dev.croupier.client.CroupierClient;
import dev.croupier.client.DecideRequest;
import dev.croupier.client.Decision;
import dev.croupier.client.HashAlgorithm;
import dev.croupier.client.RankRequest;
import dev.croupier.client.RewardBatcher;
import dev.croupier.client.Slate;
import java.time.Duration;
import java.util.List;
import java.util.Map;

public final class QuickstartExample {
    public static void run(String policyUrl, String experimentUrl) {
        // One client per runtime, shared by every thread of the service.
        CroupierClient policy = CroupierClient.builder(policyUrl)
                .token(System.getenv("CROUPIER_TOKEN"))    // runtimes with spec.auth; null sends none
                .requestTimeout(Duration.ofMillis(250))
                .fallbackArm("blue-banner")                // answered when the runtime cannot decide
                .build();

        try (RewardBatcher rewards = policy.rewardBatcher()) {  // close() delivers what is still queued
            Decision decision = policy.decide(DecideRequest.builder()
                    .unitId("player-42")
                    .context(Map.of("sessions_7d", 4))
                    .build());
            System.out.println("show " + decision.arm() + " (p=" + decision.propensity() + ")");
            if (!decision.fallback()) {                    // a fallback was not logged: nothing to reward
                rewards.add(decision.decisionId(), 1);     // the player clicked
            }

            // A ranking: each position is a decision of its own, rewarded by its decisionId.
            Slate slate = policy.rank(RankRequest.builder(2).unitId("player-42").build());
            System.out.println("slate " + slate.arms());
            rewards.add(slate.position(1).decisionId(), 1);  // a click on the top position
        }

        // Experiments: the runtime assigns the unit (and logs its exposure) ...
        CroupierClient experiment = CroupierClient.create(experimentUrl);
        Assignment assignment = experiment.assign("user-1");
        System.out.println("user-1 gets " + assignment.variant() + ": " + assignment.payload());

        // ... or the service computes the variant itself with the published hash and reports the exposure.
        Assigner assigner = new Assigner("checkout-offer-2025-q1",
                List.of(new Assigner.Weight("control", 50), new Assigner.Weight("free-shipping", 50)),
                HashAlgorithm.SHA256_V1);
        String variant = assigner.assign("user-2");
        experiment.expose("user-2", variant, assignment.epoch());
        experiment.outcome("user-2", "conversion", 1, "order-77");  // eventId: safe to retry
    }
}
// [end]
