package dev.croupier.client;

/** The runtime could not be reached, or did not answer within the request timeout. */
public final class CroupierTransportException extends CroupierException {
    private static final long serialVersionUID = 1L;

    private final boolean timedOut;

    public CroupierTransportException(String message, Throwable cause, boolean timedOut) {
        super(message, cause);
        this.timedOut = timedOut;
    }

    /** True when the request timed out (it may have reached the runtime); false when no connection was made. */
    public boolean timedOut() {
        return timedOut;
    }
}
