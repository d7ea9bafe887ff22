package dev.croupier.client;

import java.util.Arrays;

/** The assignment hash schemes of an Experiment's {@code spec.assignment.algorithm}. */
public enum HashAlgorithm {
    /** Croupier's own: SHA-256 of {@code salt + ":" + unitId}, first 8 bytes mod 10000. */
    SHA256_V1("sha256-v1"),
    /** GrowthBook's hashing version 2. */
    FNV1A32_V2("fnv1a32-v2"),
    /** GrowthBook's hashing version 1. */
    FNV1A32_V1("fnv1a32-v1");

    private final String wireName;

    HashAlgorithm(String wireName) {
        this.wireName = wireName;
    }

    /** The name in the Experiment spec, e.g. {@code sha256-v1}. */
    public String wireName() {
        return wireName;
    }

    /** The algorithm the spec names; IllegalArgumentException naming the known ones otherwise. */
    public static HashAlgorithm fromWireName(String name) {
        for (HashAlgorithm algorithm : values()) {
            if (algorithm.wireName.equals(name)) {
                return algorithm;
            }
        }
        throw new IllegalArgumentException("unknown assignment algorithm '" + name + "'; known: "
                + Arrays.stream(values()).map(HashAlgorithm::wireName).toList());
    }

    @Override
    public String toString() {
        return wireName;
    }
}
