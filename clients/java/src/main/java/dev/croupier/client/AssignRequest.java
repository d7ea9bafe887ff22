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
 *
 * <p>The unit is {@code unitId} or, without it ({@link #builder()}, {@link #ofAttributes}), the attribute the
 * Experiment's {@code spec.assignment.unitKey} names, a string: {@code unitId} is then left out of the body (never
 * sent as null). A request with neither a unitId nor attributes is refused when built.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public final class AssignRequest {
    private final String unitId;
    private final Map<String, Object> attributes;
    private final Object context;

    private AssignRequest(Builder builder) {
        if (builder.unitId == null && (builder.attributes == null || builder.attributes.isEmpty())) {
            throw new IllegalArgumentException(
                    "unitId or attributes holding the experiment's unitKey is required (field unitId)");
        }
        this.unitId = builder.unitId;
        this.attributes = builder.attributes;
        this.context = builder.context;
    }

    public static AssignRequest of(String unitId) {
        return builder(unitId).build();
    }

    /** The unit given by its attributes alone: {@code attributes[spec.assignment.unitKey]}. */
    public static AssignRequest ofAttributes(Map<String, ?> attributes) {
        return builder().attributes(Objects.requireNonNull(attributes, "attributes")).build();
    }

    public static Builder builder(String unitId) {
        return new Builder(Objects.requireNonNull(unitId, "unitId"));
    }

    /** A request without a unitId: set the attributes, one of which is the Experiment's unitKey. */
    public static Builder builder() {
        return new Builder(null);
    }

    /** The unit id, or null when the unit is given by the attributes. */
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
