package dev.croupier.client;

/**
 * The runtime answered with an error: its JSON error body {@code {"status", "error", "message", "field"}}.
 *
 * <p>{@link #error()} is the runtime's CamelCase code ({@code UnknownArm}, {@code InvalidContext},
 * {@code AttributionWindowExpired}, ...), {@link #field()} the offending field when the runtime names one (e.g.
 * {@code candidates[2]} or {@code rewards[3].reward}). Subclasses group the codes a caller typically handles
 * differently; {@link #of} picks the subclass.
 */
public class CroupierApiException extends CroupierException {
    private static final long serialVersionUID = 1L;

    private final int status;
    private final String error;
    private final String field;

    public CroupierApiException(int status, String error, String message, String field) {
        super(status + " " + error + ": " + message + (field == null ? "" : " (field " + field + ")"));
        this.status = status;
        this.error = error;
        this.field = field;
    }

    /** The HTTP status code. */
    public int status() {
        return status;
    }

    /** The runtime's machine-readable error code, e.g. {@code UnknownArm}. */
    public String error() {
        return error;
    }

    /** The offending field as the runtime names it, e.g. {@code rewards[3].reward}; null when none is named. */
    public String field() {
        return field;
    }

    /** The runtime's message for humans (without the status, code and field this exception's message adds). */
    public String runtimeMessage() {
        String message = getMessage();
        String prefix = status + " " + error + ": ";
        String suffix = field == null ? "" : " (field " + field + ")";
        return message.substring(prefix.length(), message.length() - suffix.length());
    }

    /** Whether the same request may succeed later: the runtime was unavailable, overloaded or timed out. */
    public boolean isTransient() {
        return status == 408 || status == 429 || status >= 500;
    }

    /** The exception for an error answer: a subclass for the codes callers handle differently. */
    public static CroupierApiException of(int status, String error, String message, String field) {
        if (status == 401 || status == 403) {
            return new AuthenticationException(status, error, message, field);
        }
        if (status == 404 && "UnknownDecision".equals(error)) {
            return new UnknownDecisionException(status, error, message, field);
        }
        if (status == 409 && "AttributionWindowExpired".equals(error)) {
            return new AttributionWindowExpiredException(status, error, message, field);
        }
        if (status == 400 || status == 413 || status == 422) {
            return new InvalidRequestException(status, error, message, field);
        }
        if (status == 408 || status == 429 || status >= 500) {
            return new RuntimeUnavailableException(status, error, message, field);
        }
        return new CroupierApiException(status, error, message, field);
    }

    /** 400, 413, 422: the request breaks the contract ({@code UnknownArm}, {@code InvalidContext}, ...). */
    public static final class InvalidRequestException extends CroupierApiException {
        private static final long serialVersionUID = 1L;

        public InvalidRequestException(int status, String error, String message, String field) {
            super(status, error, message, field);
        }
    }

    /** 401, 403: the bearer token is missing, unknown, or lacks the route's scope. */
    public static final class AuthenticationException extends CroupierApiException {
        private static final long serialVersionUID = 1L;

        public AuthenticationException(int status, String error, String message, String field) {
            super(status, error, message, field);
        }
    }

    /** 404 {@code UnknownDecision}: no such decision (never made, or past the log's retention). */
    public static final class UnknownDecisionException extends CroupierApiException {
        private static final long serialVersionUID = 1L;

        public UnknownDecisionException(int status, String error, String message, String field) {
            super(status, error, message, field);
        }
    }

    /** 409 {@code AttributionWindowExpired}: the reward came after the decision's attribution window. */
    public static final class AttributionWindowExpiredException extends CroupierApiException {
        private static final long serialVersionUID = 1L;

        public AttributionWindowExpiredException(int status, String error, String message, String field) {
            super(status, error, message, field);
        }
    }

    /** 408, 429, 5xx: the runtime (or a proxy before it) could not serve the request now; retry later. */
    public static final class RuntimeUnavailableException extends CroupierApiException {
        private static final long serialVersionUID = 1L;

        public RuntimeUnavailableException(int status, String error, String message, String field) {
            super(status, error, message, field);
        }
    }
}
