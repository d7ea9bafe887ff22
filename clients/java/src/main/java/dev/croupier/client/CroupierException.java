package dev.croupier.client;

/** Base of every exception the client throws (unchecked). */
public class CroupierException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public CroupierException(String message) {
        super(message);
    }

    public CroupierException(String message, Throwable cause) {
        super(message, cause);
    }
}
