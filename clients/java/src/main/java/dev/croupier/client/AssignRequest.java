package dev.croupier.client;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A request for a unit's variant ({@code POST /v1/assign} on an experiment's runtime). {@code attributes} (strings,
 * numbers, booleans) go to a DecisionPolicy target as its context when they are numbers and no {@code context} is
 * set; {@code context} is sent to such a target as is.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public final class AssignRequest {
    private final String unitId;
    private final Map<String, Object> attributes;
    private final Object context;

    private AssignRequest(Builder builder) {
        this.unitId = Objects.requireNonNull(builder.unitId, "unitId");
        this.attributes = builder.attributes;
        this.context = builder.context;
    }

    public static AssignRequest of(String unitId) {
        return builder(unitId).build();
    }

    public static Builder builder(String unitId) {
        return new Builder(unitId);
    }

    public String getUnitId() {
        return unitId;
    }

    public Map<String, Object> getAttributes() {
        return attributes;
    }

    public Object getContext() {
        return context;
    }

    /** Builds an {@link AssignRequest}. */
    public static final class Builder {
        private final String unitId;
        private Map<String, Object> attributes;
        private Object context;

        private Builder(String unitId) {
            this.unitId = unitId;
        }

        /** Attributes of the unit: String, Number or Boolean values (or null). */
        public Builder attributes(Map<String, ?> attributes) {
            this.attributes = attributes == null ? null : new LinkedHashMap<>(attributes);
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

        public AssignRequest build() {
            return new AssignRequest(this);
        }
    }
}
