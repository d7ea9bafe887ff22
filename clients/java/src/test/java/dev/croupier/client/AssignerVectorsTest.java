package dev.croupier.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The Java assignment reproduces every vector of the shared contract file, bit for bit (docs/api/assignment-vectors.json). */
class AssignerVectorsTest {
    private static JsonNode vectors() throws IOException {
        return new ObjectMapper().readTree(Path.of(System.getProperty("croupier.vectors")).toFile());
    }

    @Test
    void bucketsAndFractionsMatchEveryHashVector() throws IOException {
        JsonNode hash = vectors().get("hash");
        assertTrue(hash.size() >= 60, "the vector file has its hash vectors");
        List<String> failures = new ArrayList<>();
        for (JsonNode v : hash) {
            HashAlgorithm algorithm = HashAlgorithm.fromWireName(v.get("algorithm").asText());
            String salt = v.get("salt").asText();
            String unit = v.get("unitId").asText();
            int bucket = Assigner.bucket(unit, salt, algorithm);
            double fraction = Assigner.fraction(unit, salt, algorithm);
            // Exact: the fraction is compared as a double, as the Python and JavaScript implementations produce it.
            if (bucket != v.get("bucket").asInt() || fraction != v.get("fraction").asDouble()) {
                failures.add(v + " -> bucket " + bucket + ", fraction " + fraction);
            }
        }
        assertEquals(List.of(), failures);
    }

    @Test
    void variantsMatchEveryAssignVector() throws IOException {
        JsonNode assign = vectors().get("assign");
        assertTrue(assign.size() >= 80, "the vector file has its assign vectors");
        List<String> failures = new ArrayList<>();
        boolean sawSupplementary = false;
        for (JsonNode v : assign) {
            List<Assigner.Weight> weights = new ArrayList<>();
            for (JsonNode w : v.get("weights")) {
                weights.add(new Assigner.Weight(w.get(0).asText(), w.get(1).asInt()));
            }
            String unit = v.get("unitId").asText();
            sawSupplementary |= unit.codePoints().anyMatch(Character::isSupplementaryCodePoint);
            Assigner assigner = new Assigner(v.get("salt").asText(), weights,
                    HashAlgorithm.fromWireName(v.get("algorithm").asText()));
            String got = assigner.assign(unit);
            if (!got.equals(v.get("variant").asText())) {
                failures.add(v + " -> " + got);
            }
        }
        assertEquals(List.of(), failures);
        assertTrue(sawSupplementary, "the vectors include a unit id outside the Basic Multilingual Plane");
    }

    @Test
    void theBoundAssignerAgreesWithTheContractsStepsOnManyUnits() {
        List<Assigner.Weight> weights = List.of(new Assigner.Weight("a", 33), new Assigner.Weight("b", 0),
                new Assigner.Weight("c", 67));
        java.util.Random random = new java.util.Random(7);
        for (HashAlgorithm algorithm : HashAlgorithm.values()) {
            Assigner assigner = new Assigner("salt-ü", weights, algorithm);
            for (int i = 0; i < 20_000; i++) {
                String unit = i % 3 == 0 ? "user-" + i
                        : new String(Character.toChars(0x20 + random.nextInt(0x1F000))) + i;
                int bucket = Assigner.bucket(unit, "salt-ü", algorithm);
                String expected;
                if (algorithm == HashAlgorithm.SHA256_V1) {
                    expected = bucket < 3300 ? "a" : "c";
                } else {
                    expected = Assigner.chooseVariation(Assigner.fraction(unit, "salt-ü", algorithm), weights);
                }
                assertEquals(expected, assigner.assign(unit), algorithm + " " + unit);
            }
        }
    }

    @Test
    void growthBookPublishedVectors() {
        assertEquals(0.22, Assigner.fraction("a", "", HashAlgorithm.FNV1A32_V1));
        assertEquals(0.0505, Assigner.fraction("a", "seed", HashAlgorithm.FNV1A32_V2));
    }

    @Test
    void badWeightsAndAlgorithmsAreRefusedByName() {
        IllegalArgumentException sum = assertThrows(IllegalArgumentException.class, () -> new Assigner("s",
                List.of(new Assigner.Weight("a", 60), new Assigner.Weight("b", 30)), HashAlgorithm.SHA256_V1));
        assertTrue(sum.getMessage().contains("sum to 100, got 90"), sum.getMessage());
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> new Assigner("s",
                List.of(new Assigner.Weight("a", 50), new Assigner.Weight("a", 50)), HashAlgorithm.SHA256_V1));
        assertTrue(twice.getMessage().contains("variant a appears twice"), twice.getMessage());
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> HashAlgorithm.fromWireName("md5"));
        assertEquals("unknown assignment algorithm 'md5'; known: [sha256-v1, fnv1a32-v2, fnv1a32-v1]",
                unknown.getMessage());
    }
}
