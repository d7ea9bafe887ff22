package dev.croupier.client;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A request for an arm ({@code POST /v1/decide}). Every field is optional for a non-contextual policy; contextual
 * policies (LinUCB, LinearThompson) need a context: every feature by name, or the numbers in feature order.
 *
 * <pre>{@code
 * DecideRequest.builder().unitId("player-42").context(Map.of("age_bucket", 3, "is_mobile", 1)).build()
 * }</pre>
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public final class DecideRequest {
    private final String unitId;
    private final Object context;
    private final List<String> candidates;

    private DecideRequest(Builder builder) {
        this.unitId = builder.unitId;
        this.context = builder.context;
        this.candidates = builder.candidates;
    }

    /** A request without unit, context or candidates (non-contextual policies). */
    public static DecideRequest empty() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Who the decision is for (user, session, match); logged with the decision. */
    public String getUnitId() {
        return unitId;
    }

    /** The context: a {@code Map<String, Number>} by feature name or a {@code List<Number>} in feature order. */
    public Object getContext() {
        return context;
    }

    /** The arms the choice is restricted to (null: every arm). */
    public List<String> getCandidates() {
        return candidates;
    }

    /** Builds a {@link DecideRequest}. */
    public static final class Builder {
        private String unitId;
        private Object context;
        private List<String> candidates;

        private Builder() {}

        public Builder unitId(String unitId) {
            this.unitId = unitId;
            return this;
        }

        /** The context by feature name (a contextual policy needs exactly its features). */
        public Builder context(Map<String, ? extends Number> context) {
            this.context = context == null ? null : new LinkedHashMap<>(context);
            return this;
        }

        /** The context as numbers in the policy's feature order (without the intercept). */
        public Builder context(List<? extends Number> context) {
            this.context = context == null ? null : List.copyOf(context);
            return this;
        }

        /** Restrict the choice to these arms (unique names of the policy's arms). */
        public Builder candidates(List<String> candidates) {
            this.candidates = candidates == null ? null : List.copyOf(candidates);
            return this;
        }

        public Builder candidates(String... candidates) {
            return candidates(List.of(candidates));
        }

        public DecideRequest build() {
            return new DecideRequest(this);
        }
    }
}
