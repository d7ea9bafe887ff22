package dev.croupier.client.bench;

import dev.croupier.client.Assigner;
import dev.croupier.client.HashAlgorithm;
import java.util.List;

/**
 * Local assignment cost per unit (ns), for bench/assign.sh: prints one line per scheme, {@code <scheme> <ns>}, the
 * best of five rounds of {@code n} assignments after a warm-up (the JIT compiles the loop first).
 */
public final class AssignBench {
    private AssignBench() {}

    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 200_000;
        List<Assigner.Weight> weights = List.of(new Assigner.Weight("control", 34), new Assigner.Weight("bandit", 33),
                new Assigner.Weight("ranker-v2", 33));
        String[] units = new String[n];
        for (int i = 0; i < n; i++) {
            units[i] = "user-" + i;
        }
        for (HashAlgorithm algorithm : HashAlgorithm.values()) {
            Assigner assigner = new Assigner("checkout-offer-2025-q1", weights, algorithm);
            long sink = 0;
            for (int i = 0; i < 3; i++) {
                for (String unit : units) {
                    sink += assigner.assign(unit).length();
                }
            }
            long best = Long.MAX_VALUE;
            for (int round = 0; round < 5; round++) {
                long start = System.nanoTime();
                for (String unit : units) {
                    sink += assigner.assign(unit).length();
                }
                best = Math.min(best, System.nanoTime() - start);
            }
            System.out.printf("%s %.1f %d%n", algorithm.wireName(), best / (double) n, sink % 7);
        }
    }
}
