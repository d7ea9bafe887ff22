package dev.croupier.client;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiFunction;

/**
 * An HTTP proxy on 127.0.0.1 in front of a real runtime that injects the faults a healthy runtime does not show on
 * demand (a 503 answer, a slow answer): a rule sees each request's path and its number on that path (from 1) and
 * answers {@link Fault#FORWARD}, a canned error, or a delay before forwarding. Counts requests per path.
 */
final class FaultProxy implements AutoCloseable {
    /** What to do with one request. */
    record Fault(int status, String body, long delayMillis) {
        static final Fault FORWARD = new Fault(0, null, 0);

        static Fault unavailable() {
            return new Fault(503, "{\"status\":503,\"error\":\"Unavailable\",\"message\":\"injected by the test\","
                    + "\"field\":null}", 0);
        }

        static Fault delay(long millis) {
            return new Fault(0, null, millis);
        }
    }

    private final HttpServer server;
    private final ExecutorService executor = Executors.newCachedThreadPool();
    private final HttpClient upstream = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private final Map<String, AtomicInteger> counts = new ConcurrentHashMap<>();
    private final AtomicInteger active = new AtomicInteger();
    private final AtomicInteger maxActive = new AtomicInteger();
    private volatile BiFunction<String, Integer, Fault> rule = (path, n) -> Fault.FORWARD;
    final String url;

    FaultProxy(String target) throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
        server.createContext("/", exchange -> handle(exchange, target));
        server.setExecutor(executor);
        server.start();
        url = "http://127.0.0.1:" + server.getAddress().getPort();
    }

    void rule(BiFunction<String, Integer, Fault> rule) {
        this.rule = rule;
    }

    int count(String path) {
        AtomicInteger count = counts.get(path);
        return count == null ? 0 : count.get();
    }

    /** The most requests the proxy held at once. */
    int maxConcurrent() {
        return maxActive.get();
    }

    private void handle(HttpExchange exchange, String target) throws IOException {
        maxActive.accumulateAndGet(active.incrementAndGet(), Math::max);
        try (exchange) {
            String path = exchange.getRequestURI().getPath();
            int n = counts.computeIfAbsent(path, p -> new AtomicInteger()).incrementAndGet();
            byte[] body;
            try (InputStream in = exchange.getRequestBody()) {
                body = in.readAllBytes();
            }
            Fault fault = rule.apply(path, n);
            if (fault.status() != 0) {
                reply(exchange, fault.status(), fault.body().getBytes(StandardCharsets.UTF_8));
                return;
            }
            if (fault.delayMillis() > 0) {
                RuntimeProcess.sleep(fault.delayMillis());
            }
            HttpRequest.Builder forward = HttpRequest.newBuilder(URI.create(target + exchange.getRequestURI()))
                    .timeout(Duration.ofSeconds(30))
                    .method(exchange.getRequestMethod(), body.length == 0 && "GET".equals(exchange.getRequestMethod())
                            ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
            String authorization = exchange.getRequestHeaders().getFirst("Authorization");
            if (authorization != null) {
                forward.header("Authorization", authorization);
            }
            try {
                HttpResponse<byte[]> answer = upstream.send(forward.build(), HttpResponse.BodyHandlers.ofByteArray());
                reply(exchange, answer.statusCode(), answer.body());
            } catch (IOException e) {
                reply(exchange, 502, ("{\"status\":502,\"error\":\"BadGateway\",\"message\":\"" + e.getClass()
                        .getSimpleName() + "\"}").getBytes(StandardCharsets.UTF_8));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        } finally {
            active.decrementAndGet();
        }
    }

    private static void reply(HttpExchange exchange, int status, byte[] body) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        }
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
