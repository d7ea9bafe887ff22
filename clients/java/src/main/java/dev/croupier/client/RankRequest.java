package dev.croupier.client;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A request for an ordered slate of {@code k} distinct arms ({@code POST /v1/rank}); unitId, context and candidates
 * as for {@link DecideRequest}. {@code k} is 1 to the number of eligible arms.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public final class RankRequest {
    private final int k;
    private final String unitId;
    private final Object context;
    private final List<String> candidates;

    private RankRequest(Builder builder) {
        this.k = builder.k;
        this.unitId = builder.unitId;
        this.context = builder.context;
        this.candidates = builder.candidates;
    }

    /** A request for the top {@code k} arms. */
    public static Builder builder(int k) {
        return new Builder(k);
    }

    public int getK() {
        return k;
    }

    public String getUnitId() {
        return unitId;
    }

    public Object getContext() {
        return context;
    }

    public List<String> getCandidates() {
        return candidates;
    }

    /** Builds a {@link RankRequest}. */
    public static final class Builder {
        private final int k;
        private String unitId;
        private Object context;
        private List<String> candidates;

        private Builder(int k) {
            if (k < 1) {
                throw new IllegalArgumentException("k must be >= 1, got " + k);
            }
            this.k = k;
        }

        public Builder unitId(String unitId) {
            this.unitId = unitId;
            return this;
        }

        public Builder context(Map<String, ? extends Number> context) {
            this.context = context == null ? null : new LinkedHashMap<>(context);
            return this;
        }

        public Builder context(List<? extends Number> context) {
            this.context = context == null ? null : List.copyOf(context);
            return this;
        }

        /** Rank only these arms (unique names of the policy's arms). */
        public Builder candidates(List<String> candidates) {
            this.candidates = candidates == null ? null : List.copyOf(candidates);
            return this;
        }

        public Builder candidates(String... candidates) {
            return candidates(List.of(candidates));
        }

        public RankRequest build() {
            return new RankRequest(this);
        }
    }
}
