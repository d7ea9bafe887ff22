package dev.croupier.client;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A real {@code croupier-runtime} process (the project's Python runtime) serving a DecisionPolicy or an Experiment
 * manifest on 127.0.0.1 and a free port, with its state in a temporary folder. The binary comes from the system
 * property {@code croupier.runtime} ({@code make test-java} sets it to the project's .venv).
 */
final class RuntimeProcess implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();

    final Path stateDir;
    final Path log;
    final int port;
    final String url;
    private final List<String> command;
    private Process process;

    private RuntimeProcess(String kindFlag, Path manifest, Path stateDir, int port, List<String> extraArgs) {
        this.stateDir = stateDir;
        this.port = port;
        this.url = "http://127.0.0.1:" + port;
        this.log = stateDir.resolve("runtime-" + port + ".log");
        this.command = new ArrayList<>(List.of(binary(), kindFlag, manifest.toString(), "--host", "127.0.0.1",
                "--port", Integer.toString(port), "--state-dir", stateDir.toString()));
        this.command.addAll(extraArgs);
    }

    /** Start a runtime serving the DecisionPolicy manifest and wait until it is ready. */
    static RuntimeProcess policy(Path dir, Map<String, Object> spec, String... extraArgs) throws IOException {
        Path manifest = writeManifest(dir.resolve("policy.yaml"), "DecisionPolicy", "banner", "games", spec);
        return new RuntimeProcess("--policy", manifest, dir.resolve("state"), freePort(), List.of(extraArgs)).start();
    }

    /** Start a runtime serving the Experiment manifest and wait until it is ready. */
    static RuntimeProcess experiment(Path dir, Map<String, Object> spec, String... extraArgs) throws IOException {
        Path manifest = writeManifest(dir.resolve("experiment.yaml"), "Experiment", "checkout", "shop", spec);
        return new RuntimeProcess("--experiment", manifest, dir.resolve("state"), freePort(), List.of(extraArgs))
                .start();
    }

    /** A Thompson-sampling policy over blue, green and red with Binary rewards (a one-hour window). */
    static Map<String, Object> thompsonSpec() {
        Map<String, Object> spec = new LinkedHashMap<>();
        spec.put("arms", List.of(Map.of("name", "blue"), Map.of("name", "green"), Map.of("name", "red")));
        spec.put("algorithm", Map.of("type", "ThompsonSampling"));
        spec.put("reward", Map.of("type", "Binary", "attributionWindowSeconds", 3600));
        return spec;
    }

    private static Path writeManifest(Path path, String kind, String name, String namespace, Map<String, Object> spec)
            throws IOException {
        Map<String, Object> document = new LinkedHashMap<>();
        document.put("apiVersion", "croupier.dev/v1alpha1");
        document.put("kind", kind);
        document.put("metadata", Map.of("name", name, "namespace", namespace, "generation", 1));
        document.put("spec", spec);
        Files.createDirectories(path.getParent());
        Files.writeString(path, JSON.writeValueAsString(document)); // JSON is YAML
        return path;
    }

    static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    private static String binary() {
        String binary = System.getProperty("croupier.runtime");
        if (binary == null || !Files.isExecutable(Path.of(binary))) {
            throw new IllegalStateException("the runtime binary " + binary + " is not executable: run `make sync` "
                    + "at the repository's root (or pass -Dcroupier.runtime=/path/to/croupier-runtime)");
        }
        return binary;
    }

    /** Start (again, after {@link #kill()}: same port, same state) and wait until /readyz answers 200. */
    RuntimeProcess start() throws IOException {
        Files.createDirectories(stateDir);
        ProcessBuilder builder = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        builder.environment().put("CROUPIER_RUNTIME_LOG_FORMAT", "json");
        process = builder.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException("the runtime exited with " + process.exitValue() + ": " + tail());
            }
            try {
                HttpResponse<Void> ready = HTTP.send(HttpRequest.newBuilder(URI.create(url + "/readyz"))
                        .timeout(Duration.ofSeconds(1)).build(), HttpResponse.BodyHandlers.discarding());
                if (ready.statusCode() == 200) {
                    return this;
                }
            } catch (IOException e) {
                // not listening yet
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while waiting for the runtime", e);
            }
            sleep(50);
        }
        close();
        throw new IllegalStateException("the runtime was not ready within 60 s: " + tail());
    }

    /** SIGKILL: nothing is flushed, the port is free again. */
    void kill() throws InterruptedException {
        if (process != null && process.isAlive()) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }

    String tail() {
        try {
            String text = Files.readString(log, StandardCharsets.UTF_8);
            return text.length() > 2000 ? text.substring(text.length() - 2000) : text;
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** SIGTERM (the runtime's clean shutdown), then SIGKILL if it does not exit within 15 s. */
    @Override
    public void close() {
        if (process == null) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(15, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
