package dev.croupier.client;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.Objects;

/**
 * A unit exposed to the variant the client computed itself ({@link Assigner}); {@code epoch} (optional) is the epoch
 * the variant was computed for: the runtime answers {@code stale} for another one.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Exposure(String unitId, String variant, String epoch) {
    public Exposure {
        Objects.requireNonNull(unitId, "unitId");
        Objects.requireNonNull(variant, "variant");
    }

    public static Exposure of(String unitId, String variant) {
        return new Exposure(unitId, variant, null);
    }
}
