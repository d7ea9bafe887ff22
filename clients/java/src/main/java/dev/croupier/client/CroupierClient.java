package dev.croupier.client;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * A client of one Croupier runtime: a DecisionPolicy's (decide, rank, rewards, stats) or an Experiment's (assign,
 * exposures, outcomes, experiment stats). Thread-safe; share one instance per runtime. Every call has an async variant
 * returning a {@link CompletableFuture}; the sync methods wait for it and throw its exception as is.
 *
 * <ul>
 *   <li>Errors: {@link CroupierApiException} (and subclasses) carry the runtime's {@code error} code and
 *       {@code field}; {@link CroupierTransportException} means the runtime could not be reached or timed out.
 *   <li>Retries ({@link RetryPolicy}): only idempotent calls. Decide, rank and assign are sent once.
 *   <li>Fallback: with {@link Builder#fallbackArm}, a decide the runtime cannot answer (unreachable, timed out, 5xx)
 *       returns that arm with {@link Decision#fallback()} set instead of throwing; bad requests (4xx) still throw.
 * </ul>
 */
public final class CroupierClient {
    static final ObjectMapper MAPPER = JsonMapper.builder()
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .defaultPropertyInclusion(JsonInclude.Value.construct(JsonInclude.Include.NON_NULL, JsonInclude.Include.NON_NULL))
            .build();

    /** Requests the runtime takes in one call: rewards, exposures and outcomes per request. */
    public static final int MAX_ITEMS_PER_REQUEST = 1000;

    private static final String USER_AGENT = "croupier-java/0.1";

    private final String base;
    private final HttpClient http;
    private final Supplier<String> token;
    private final Duration requestTimeout;
    private final RetryPolicy retry;
    private final String fallbackArm;
    private final List<String> fallbackSlate;
    private final int maxConcurrentRequests;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final ConcurrentLinkedQueue<Runnable> waiting = new ConcurrentLinkedQueue<>();

    private CroupierClient(Builder builder) {
        String url = builder.baseUrl;
        this.base = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
        this.http = builder.httpClient != null
                ? builder.httpClient
                : HttpClient.newBuilder()
                        .version(HttpClient.Version.HTTP_1_1)
                        .connectTimeout(builder.connectTimeout)
                        .build();
        this.token = builder.token;
        this.requestTimeout = builder.requestTimeout;
        this.retry = builder.retry;
        this.fallbackArm = builder.fallbackArm;
        this.fallbackSlate = builder.fallbackSlate;
        this.maxConcurrentRequests = builder.maxConcurrentRequests;
    }

    /** A builder for the runtime at {@code baseUrl}, e.g. {@code http://homepage-banner.games.svc:8080}. */
    public static Builder builder(String baseUrl) {
        return new Builder(baseUrl);
    }

    /** A client with the defaults for the runtime at {@code baseUrl}. */
    public static CroupierClient create(String baseUrl) {
        return builder(baseUrl).build();
    }

    public String baseUrl() {
        return base;
    }

    // --- decide ----------------------------------------------------------------------------------------------------

    /** An arm from the policy (see the class doc for the fallback). */
    public Decision decide(DecideRequest request) {
        return await(decideAsync(request));
    }

    public CompletableFuture<Decision> decideAsync(DecideRequest request) {
        Objects.requireNonNull(request, "request");
        return call("POST", "/v1/decide", request, Wire.DecideResponse.class, RetryPolicy.none())
                .thenApply(r -> new Decision(r.decisionId(), r.arm(), r.probabilities(), r.policyVersion(), false,
                        null))
                .exceptionallyCompose(error -> {
                    Throwable cause = unwrap(error);
                    if (fallbackArm != null && unreachable(cause)) {
                        return CompletableFuture.completedFuture(Decision.fallback(fallbackFor(request), cause));
                    }
                    return CompletableFuture.failedFuture(cause);
                });
    }

    private String fallbackFor(DecideRequest request) {
        List<String> candidates = request.getCandidates();
        if (candidates == null || candidates.isEmpty() || candidates.contains(fallbackArm)) {
            return fallbackArm;
        }
        return candidates.get(0);
    }

    // --- rank ------------------------------------------------------------------------------------------------------

    /**
     * An ordered slate of k distinct arms. Each position is a decision of its own (its decisionId takes that
     * position's reward at {@link #reward}); its propensity is the probability of its arm given the positions above.
     * Sent once, never retried; with {@link Builder#fallbackSlate} an unreachable runtime answers that order instead.
     */
    public Slate rank(RankRequest request) {
        return await(rankAsync(request));
    }

    public CompletableFuture<Slate> rankAsync(RankRequest request) {
        Objects.requireNonNull(request, "request");
        return call("POST", "/v1/rank", request, Wire.RankResponse.class, RetryPolicy.none())
                .thenApply(r -> new Slate(r.slateId(), r.policyVersion(), r.slate(), false, null))
                .exceptionallyCompose(error -> {
                    Throwable cause = unwrap(error);
                    if (fallbackSlate != null && unreachable(cause)) {
                        return CompletableFuture.completedFuture(Slate.fallback(fallbackSlate, request, cause));
                    }
                    return CompletableFuture.failedFuture(cause);
                });
    }

    // --- rewards ---------------------------------------------------------------------------------------------------

    /**
     * The reward of one decision, answered once durable. Retried after transient failures: a retry whose first
     * attempt did reach the runtime answers {@code duplicate} (the reward is stored once).
     */
    public RewardResponse reward(String decisionId, double reward) {
        return await(rewardAsync(decisionId, reward));
    }

    public CompletableFuture<RewardResponse> rewardAsync(String decisionId, double reward) {
        Reward item;
        try {
            item = new Reward(decisionId, reward);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return call("POST", "/v1/rewards", item, RewardResponse.class, retry);
    }

    /**
     * Several rewards in one request (up to 1000), validated as a whole by the runtime: one bad reward rejects the
     * request and stores nothing. For many rewards sent in the background use {@link #rewardBatcher()}.
     */
    public RewardResponse rewards(List<Reward> rewards) {
        return await(rewardsAsync(rewards));
    }

    public CompletableFuture<RewardResponse> rewardsAsync(List<Reward> rewards) {
        return postRewards(rewards, retry);
    }

    CompletableFuture<RewardResponse> postRewards(List<Reward> rewards, RetryPolicy policy) {
        try {
            checkBatch(rewards, "rewards");
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return call("POST", "/v1/rewards", Map.of("rewards", rewards), RewardResponse.class, policy);
    }

    /** A batching reward sender with the defaults (see {@link RewardBatcher.Builder}). */
    public RewardBatcher rewardBatcher() {
        return RewardBatcher.builder(this).build();
    }

    // --- experiments -----------------------------------------------------------------------------------------------

    /** The unit's variant from an experiment's runtime (its first assignment in the epoch logs its exposure). */
    public Assignment assign(AssignRequest request) {
        return await(assignAsync(request));
    }

    public Assignment assign(String unitId) {
        return assign(AssignRequest.of(unitId));
    }

    /** The variant of the unit {@code attributes[spec.assignment.unitKey]} (no unitId). */
    public Assignment assign(Map<String, ?> attributes) {
        return assign(AssignRequest.ofAttributes(attributes));
    }

    /** Sent once: a DecisionPolicy target decides on the runtime's side, so a retry could log a second decision. */
    public CompletableFuture<Assignment> assignAsync(AssignRequest request) {
        Objects.requireNonNull(request, "request");
        return call("POST", "/v1/assign", request, Assignment.class, RetryPolicy.none());
    }

    /** Report exposures to variants computed locally ({@link Assigner}); idempotent, so retried. */
    public ExposureResponse exposures(List<Exposure> exposures) {
        return await(exposuresAsync(exposures));
    }

    public ExposureResponse expose(String unitId, String variant, String epoch) {
        return exposures(List.of(new Exposure(unitId, variant, epoch)));
    }

    public CompletableFuture<ExposureResponse> exposuresAsync(List<Exposure> exposures) {
        try {
            checkBatch(exposures, "exposures");
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return call("POST", "/v1/exposures", Map.of("exposures", exposures), ExposureResponse.class, retry);
    }

    /**
     * Report metric outcomes (up to 1000, validated as a whole). Retried only when every outcome carries an eventId
     * (the runtime then stores each once); without eventIds a retry could count an outcome twice.
     */
    public OutcomeResponse outcomes(List<Outcome> outcomes) {
        return await(outcomesAsync(outcomes));
    }

    public OutcomeResponse outcome(String unitId, String metric, double value, String eventId) {
        return outcomes(List.of(new Outcome(unitId, metric, value, eventId)));
    }

    public CompletableFuture<OutcomeResponse> outcomesAsync(List<Outcome> outcomes) {
        try {
            checkBatch(outcomes, "outcomes");
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        boolean idempotent = outcomes.stream().allMatch(o -> o.eventId() != null);
        return call("POST", "/v1/outcomes", Map.of("outcomes", outcomes), OutcomeResponse.class,
                idempotent ? retry : RetryPolicy.none());
    }

    // --- stats -----------------------------------------------------------------------------------------------------

    /** A policy runtime's statistics (per arm, totals). */
    public PolicyStats stats() {
        return await(statsAsync());
    }

    public CompletableFuture<PolicyStats> statsAsync() {
        return call("GET", "/v1/stats", null, PolicyStats.class, retry).thenApply(stats -> {
            if (stats.policy() == null || stats.arms() == null) {
                throw new CroupierException("the runtime at " + base + " does not serve a DecisionPolicy (its "
                        + "/v1/stats has no policy and arms); for an Experiment's runtime use experimentStats()");
            }
            return stats;
        });
    }

    /** An experiment runtime's statistics (per variant and metric, current epoch). */
    public ExperimentStats experimentStats() {
        return await(experimentStatsAsync());
    }

    public CompletableFuture<ExperimentStats> experimentStatsAsync() {
        return call("GET", "/v1/stats", null, ExperimentStats.class, retry).thenApply(stats -> {
            if (stats.experiment() == null || stats.variants() == null) {
                throw new CroupierException("the runtime at " + base + " does not serve an Experiment (its "
                        + "/v1/stats has no experiment and variants); for a DecisionPolicy's runtime use stats()");
            }
            return stats;
        });
    }

    // --- plumbing --------------------------------------------------------------------------------------------------

    private static void checkBatch(List<?> items, String name) {
        Objects.requireNonNull(items, name);
        if (items.isEmpty() || items.size() > MAX_ITEMS_PER_REQUEST) {
            throw new IllegalArgumentException(name + ": 1 to " + MAX_ITEMS_PER_REQUEST + " items per request, got "
                    + items.size());
        }
        for (int i = 0; i < items.size(); i++) {
            Objects.requireNonNull(items.get(i), name + "[" + i + "]");
        }
    }

    /** True for failures that say the runtime could not serve (no answer, a timeout, 408, 429, 5xx). */
    static boolean unreachable(Throwable error) {
        return error instanceof CroupierTransportException
                || (error instanceof CroupierApiException api && api.isTransient());
    }

    <T> CompletableFuture<T> call(String method, String path, Object body, Class<T> type, RetryPolicy policy) {
        HttpRequest request;
        try {
            HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(base + path))
                    .timeout(requestTimeout)
                    .header("Accept", "application/json")
                    .header("User-Agent", USER_AGENT);
            if (token != null) {
                String value = token.get();
                if (value != null && !value.isEmpty()) {
                    builder.header("Authorization", "Bearer " + value);
                }
            }
            if (body == null) {
                builder.GET();
            } else {
                builder.header("Content-Type", "application/json")
                        .method(method, HttpRequest.BodyPublishers.ofByteArray(MAPPER.writeValueAsBytes(body)));
            }
            request = builder.build();
        } catch (JsonProcessingException | IllegalArgumentException e) {
            return CompletableFuture.failedFuture(
                    new CroupierException("cannot build the request to " + path + ": " + e.getMessage(), e));
        }
        return attempt(request, type, policy, 1);
    }

    /**
     * Send when fewer than maxConcurrentRequests requests are in flight, else when one completes: HTTP/1.1 takes a
     * connection per request in flight, and a burst of async calls must not open thousands of them.
     */
    private CompletableFuture<HttpResponse<byte[]>> send(HttpRequest request) {
        CompletableFuture<HttpResponse<byte[]>> result = new CompletableFuture<>();
        waiting.add(() -> {
            CompletableFuture<HttpResponse<byte[]>> sent;
            try {
                sent = http.sendAsync(request, HttpResponse.BodyHandlers.ofByteArray());
            } catch (RuntimeException e) {
                sent = CompletableFuture.failedFuture(e);
            }
            sent.whenComplete((response, error) -> {
                inFlight.decrementAndGet();
                drain();
                if (error != null) {
                    result.completeExceptionally(error);
                } else {
                    result.complete(response);
                }
            });
        });
        drain();
        return result;
    }

    private void drain() {
        while (!waiting.isEmpty()) {
            int current = inFlight.get();
            if (current >= maxConcurrentRequests) {
                return;
            }
            if (!inFlight.compareAndSet(current, current + 1)) {
                continue;
            }
            Runnable next = waiting.poll();
            if (next == null) {
                inFlight.decrementAndGet();
                continue; // another thread took it; loop re-checks the queue
            }
            next.run();
        }
    }

    private <T> CompletableFuture<T> attempt(HttpRequest request, Class<T> type, RetryPolicy policy, int attempt) {
        return send(request)
                .handle((response, error) -> error != null
                        ? CompletableFuture.<T>failedFuture(transportError(request, unwrap(error)))
                        : answer(request, response, type))
                .thenCompose(f -> f)
                .exceptionallyCompose(error -> {
                    Throwable cause = unwrap(error);
                    if (attempt >= policy.maxAttempts() || !unreachable(cause)) {
                        return CompletableFuture.failedFuture(cause);
                    }
                    Duration wait = policy.backoff(attempt);
                    return CompletableFuture.supplyAsync(() -> null,
                                    CompletableFuture.delayedExecutor(wait.toMillis(), TimeUnit.MILLISECONDS))
                            .thenCompose(ignored -> attempt(request, type, policy, attempt + 1));
                });
    }

    private static <T> CompletableFuture<T> answer(HttpRequest request, HttpResponse<byte[]> response, Class<T> type) {
        int status = response.statusCode();
        byte[] body = response.body();
        if (status >= 200 && status < 300) {
            try {
                return CompletableFuture.completedFuture(MAPPER.readValue(body, type));
            } catch (IOException e) {
                return CompletableFuture.failedFuture(new CroupierException("unexpected answer from "
                        + request.uri() + " (" + status + "): " + snippet(body), e));
            }
        }
        return CompletableFuture.failedFuture(apiError(status, body));
    }

    static CroupierApiException apiError(int status, byte[] body) {
        try {
            JsonNode node = MAPPER.readTree(body);
            if (node != null && node.hasNonNull("error")) {
                JsonNode field = node.get("field");
                return CroupierApiException.of(status, node.get("error").asText(), node.path("message").asText(""),
                        field == null || field.isNull() ? null : field.asText());
            }
        } catch (IOException e) {
            // not the runtime's JSON error (a proxy's page): described below
        }
        return CroupierApiException.of(status, "HttpError", "HTTP " + status + ": " + snippet(body), null);
    }

    private static CroupierTransportException transportError(HttpRequest request, Throwable error) {
        if (error instanceof CroupierTransportException transport) {
            return transport;
        }
        boolean connected = !(error instanceof ConnectException || error instanceof HttpConnectTimeoutException);
        boolean timedOut = connected && error instanceof HttpTimeoutException;
        String what = timedOut ? "did not answer within " + request.timeout().map(Duration::toString).orElse("?")
                : connected ? "failed" : "could not be reached";
        return new CroupierTransportException(request.method() + " " + request.uri() + " " + what + ": " + error,
                error, timedOut);
    }

    private static String snippet(byte[] body) {
        String text = new String(body, StandardCharsets.UTF_8);
        return text.length() > 200 ? text.substring(0, 200) + "..." : text;
    }

    static Throwable unwrap(Throwable error) {
        Throwable cause = error;
        while ((cause instanceof CompletionException || cause instanceof ExecutionException)
                && cause.getCause() != null) {
            cause = cause.getCause();
        }
        return cause;
    }

    /** Wait for an async call; throw its exception unwrapped. */
    static <T> T await(CompletableFuture<T> future) {
        try {
            return future.join();
        } catch (CompletionException | java.util.concurrent.CancellationException e) {
            Throwable cause = unwrap(e);
            if (cause instanceof RuntimeException runtime) {
                throw runtime;
            }
            if (cause instanceof Error err) {
                throw err;
            }
            throw new CroupierException(String.valueOf(cause.getMessage()), cause);
        }
    }

    /** Configures a {@link CroupierClient}. */
    public static final class Builder {
        private final String baseUrl;
        private HttpClient httpClient;
        private Supplier<String> token;
        private Duration connectTimeout = Duration.ofSeconds(2);
        private boolean connectTimeoutSet;
        private Duration requestTimeout = Duration.ofSeconds(5);
        private RetryPolicy retry = RetryPolicy.defaults();
        private String fallbackArm;
        private List<String> fallbackSlate;
        private int maxConcurrentRequests = 64;

        private Builder(String baseUrl) {
            Objects.requireNonNull(baseUrl, "baseUrl");
            URI uri;
            try {
                uri = URI.create(baseUrl);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("baseUrl is not a URL: " + baseUrl, e);
            }
            if (!("http".equals(uri.getScheme()) || "https".equals(uri.getScheme())) || uri.getHost() == null) {
                throw new IllegalArgumentException("baseUrl must be an http(s) URL with a host, got " + baseUrl);
            }
            this.baseUrl = baseUrl;
        }

        /** The bearer token sent as {@code Authorization: Bearer <token>} (runtimes with {@code spec.auth}). */
        public Builder token(String token) {
            this.token = token == null ? null : () -> token;
            return this;
        }

        /** A token read for every request, so a rotated token (e.g. a re-read file) is picked up. */
        public Builder token(Supplier<String> token) {
            this.token = token;
            return this;
        }

        /** How long to wait for a connection (default 2 s). */
        public Builder connectTimeout(Duration timeout) {
            this.connectTimeout = positive(timeout, "connectTimeout");
            this.connectTimeoutSet = true;
            return this;
        }

        /** How long to wait for each answer (default 5 s); a timed out call is a transport failure. */
        public Builder requestTimeout(Duration timeout) {
            this.requestTimeout = positive(timeout, "requestTimeout");
            return this;
        }

        /** Retries of idempotent calls (default {@link RetryPolicy#defaults()}). */
        public Builder retry(RetryPolicy retry) {
            this.retry = Objects.requireNonNull(retry, "retry");
            return this;
        }

        /**
         * The arm to answer when the runtime cannot decide (unreachable, timed out, 5xx); the decision says
         * {@code fallback()}. When a request's candidates leave this arm out, the first candidate is answered.
         */
        public Builder fallbackArm(String arm) {
            this.fallbackArm = arm;
            return this;
        }

        /**
         * Requests in flight at most (default 64): HTTP/1.1 uses one connection per request in flight, so this also
         * bounds the connections to the runtime. Further calls wait in the client (their request timeout starts
         * when they are sent).
         */
        public Builder maxConcurrentRequests(int max) {
            if (max < 1) {
                throw new IllegalArgumentException("maxConcurrentRequests must be >= 1, got " + max);
            }
            this.maxConcurrentRequests = max;
            return this;
        }

        /** Use a ready-made {@link HttpClient} (its connect timeout and executor) instead of the client's own. */
        public Builder httpClient(HttpClient client) {
            this.httpClient = client;
            return this;
        }

        /**
         * The order {@code rank} answers when the runtime cannot rank (unreachable, timed out, 5xx): restricted to
         * the request's candidates, cut to k; the slate says {@code fallback()}.
         */
        public Builder fallbackSlate(List<String> arms) {
            this.fallbackSlate = arms == null ? null : List.copyOf(arms);
            return this;
        }

        public CroupierClient build() {
            if (httpClient != null && connectTimeoutSet) {
                throw new IllegalStateException("connectTimeout is set on the HttpClient given to httpClient(...), "
                        + "not on the builder: set one or the other");
            }
            return new CroupierClient(this);
        }

        private static Duration positive(Duration value, String name) {
            Objects.requireNonNull(value, name);
            if (value.isZero() || value.isNegative()) {
                throw new IllegalArgumentException(name + " must be positive, got " + value);
            }
            return value;
        }
    }
}
