package dev.croupier.client;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * Local experiment assignment: the variant a unit gets, computed in process with Croupier's published hash contract
 * (bit-exact with the runtime and the Python implementation; tested on {@code docs/api/assignment-vectors.json}).
 *
 * <ul>
 *   <li>{@code sha256-v1}: bucket = first 8 bytes of SHA-256(UTF-8(salt + ":" + unitId)) as an unsigned big-endian
 *       integer, mod 10000; variants own consecutive bucket ranges in spec order, weight w owning w × 100 buckets.
 *   <li>{@code fnv1a32-v2} (GrowthBook's version 2): n = (fnv1a32(str(fnv1a32(salt + unitId))) mod 10000) / 10000.
 *   <li>{@code fnv1a32-v1} (GrowthBook's version 1): n = (fnv1a32(unitId + salt) mod 1000) / 1000.
 * </ul>
 *
 * <p>fnv1a32 runs over UTF-16 code units (Java's {@code char}s). For the GrowthBook schemes variant i owns
 * [c_i, c_i + w_i) in double arithmetic, w_i = weight_i / 100 and c_i the running sum. Instances are immutable and
 * thread-safe.
 */
public final class Assigner {
    /** sha256-v1 and fnv1a32-v2 hash units into this many buckets (fnv1a32-v1: 1000). */
    public static final int BUCKETS = 10_000;

    private static final int FNV_OFFSET = 0x811C9DC5;
    private static final int FNV_PRIME = 0x01000193;

    /**
     * A variant and its share of the units.
     *
     * @param name the variant's name
     * @param weight percent of the units (all weights sum to 100)
     */
    public record Weight(String name, int weight) {
        public Weight {
            Objects.requireNonNull(name, "name");
        }
    }

    private static final ThreadLocal<MessageDigest> SHA256 = ThreadLocal.withInitial(Assigner::sha256);

    private final String salt;
    private final HashAlgorithm algorithm;
    private final List<Weight> weights;
    private final int[] uppers;
    private final byte[] prefix;
    private final int saltState;

    /**
     * @param salt the experiment's {@code spec.assignment.salt} (default {@code <namespace>/<name>})
     * @param weights the variants with their percent weights, in spec order, summing to 100
     * @param algorithm {@code spec.assignment.algorithm}
     */
    public Assigner(String salt, List<Weight> weights, HashAlgorithm algorithm) {
        this.salt = Objects.requireNonNull(salt, "salt");
        this.algorithm = Objects.requireNonNull(algorithm, "algorithm");
        this.weights = List.copyOf(checkWeights(weights));
        this.prefix = (salt + ":").getBytes(StandardCharsets.UTF_8);
        this.saltState = fnv1a32(FNV_OFFSET, salt);
        this.uppers = new int[this.weights.size()];
        int upper = 0;
        for (int i = 0; i < uppers.length; i++) {
            upper += this.weights.get(i).weight() * (BUCKETS / 100);
            uppers[i] = upper;
        }
    }

    public String salt() {
        return salt;
    }

    public HashAlgorithm algorithm() {
        return algorithm;
    }

    public List<Weight> weights() {
        return weights;
    }

    /** The variant the unit gets. */
    public String assign(String unitId) {
        Objects.requireNonNull(unitId, "unitId");
        switch (algorithm) {
            case SHA256_V1 -> {
                // The salt's bytes once per Assigner, the digest once per thread: the same bucket as bucket().
                MessageDigest digest = SHA256.get();
                digest.update(prefix);
                int point = sha256Bucket(digest.digest(unitId.getBytes(StandardCharsets.UTF_8)));
                for (int i = 0; i < uppers.length; i++) {
                    if (point < uppers[i]) {
                        return weights.get(i).name();
                    }
                }
                throw new AssertionError("unreachable: weights sum to 100");
            }
            case FNV1A32_V2 -> {
                // fnv1a32(salt + unitId) continues from the salt's state.
                long inner = Integer.toUnsignedLong(fnv1a32(saltState, unitId));
                return chooseVariation(fnv1a32(Long.toString(inner)) % BUCKETS / (double) BUCKETS, weights);
            }
            default -> {
                return chooseVariation(fnv1a32(unitId + salt) % 1000 / 1000.0, weights);
            }
        }
    }

    /** The unit's integer bucket: in [0, 10000) for sha256-v1 and fnv1a32-v2, in [0, 1000) for fnv1a32-v1. */
    public static int bucket(String unitId, String salt, HashAlgorithm algorithm) {
        return switch (algorithm) {
            case SHA256_V1 -> sha256Bucket(SHA256.get().digest((salt + ":" + unitId).getBytes(StandardCharsets.UTF_8)));
            case FNV1A32_V2 -> (int) (fnv1a32(Long.toString(fnv1a32(salt + unitId))) % BUCKETS);
            case FNV1A32_V1 -> (int) (fnv1a32(unitId + salt) % 1000);
        };
    }

    /** The unit's position in [0, 1): its bucket over the number of buckets (GrowthBook's {@code hash()}). */
    public static double fraction(String unitId, String salt, HashAlgorithm algorithm) {
        return bucket(unitId, salt, algorithm) / (double) divisor(algorithm);
    }

    /** 32-bit FNV-1a over the UTF-16 code units of {@code text}, as an unsigned value. */
    public static long fnv1a32(String text) {
        return Integer.toUnsignedLong(fnv1a32(FNV_OFFSET, text));
    }

    /** FNV-1a from {@code start} (the offset basis, or the state after a prefix): fnv1a32(fnv1a32(a), b) = of a + b. */
    private static int fnv1a32(int start, String text) {
        int h = start;
        for (int i = 0; i < text.length(); i++) {
            h = (h ^ text.charAt(i)) * FNV_PRIME;
        }
        return h;
    }

    /** The first 8 bytes of a SHA-256 digest as an unsigned big-endian integer, mod 10000. */
    private static int sha256Bucket(byte[] digest) {
        long first8 = 0;
        for (int i = 0; i < 8; i++) {
            first8 = (first8 << 8) | (digest[i] & 0xFF);
        }
        return (int) Long.remainderUnsigned(first8, BUCKETS);
    }

    /** GrowthBook's {@code getBucketRanges} (coverage 1) and {@code chooseVariation} in double arithmetic. */
    static String chooseVariation(double n, List<Weight> weights) {
        double cumulative = 0.0;
        for (Weight weight : weights) {
            double start = cumulative;
            double w = weight.weight() / 100.0;
            cumulative += w;
            if (start <= n && n < start + w) {
                return weight.name();
            }
        }
        // Only if the rounded sum of the weights ends below n: the last variant with traffic, as the contract says.
        for (int i = weights.size() - 1; i >= 0; i--) {
            if (weights.get(i).weight() > 0) {
                return weights.get(i).name();
            }
        }
        throw new AssertionError("unreachable: weights sum to 100");
    }

    private static int divisor(HashAlgorithm algorithm) {
        return algorithm == HashAlgorithm.FNV1A32_V1 ? 1000 : BUCKETS;
    }

    private static List<Weight> checkWeights(List<Weight> weights) {
        Objects.requireNonNull(weights, "weights");
        int sum = 0;
        Set<String> names = new HashSet<>();
        for (Weight weight : weights) {
            if (weight.weight() < 0) {
                throw new IllegalArgumentException("variant " + weight.name() + " has a negative weight "
                        + weight.weight() + "; weights must be >= 0 and sum to 100");
            }
            if (!names.add(weight.name())) {
                throw new IllegalArgumentException("variant " + weight.name() + " appears twice");
            }
            sum += weight.weight();
        }
        if (weights.isEmpty() || sum != 100) {
            throw new IllegalArgumentException("variant weights must be >= 0 and sum to 100, got " + sum
                    + " over " + weights.size() + " variants");
        }
        return weights;
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }
}
