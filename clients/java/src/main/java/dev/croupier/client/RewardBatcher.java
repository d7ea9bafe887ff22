package dev.croupier.client;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Sends rewards in the background, in batches: {@link #add} queues a reward and returns at once; a worker thread
 * posts a batch when {@code maxBatchSize} rewards wait, when the oldest has waited {@code flushInterval}, on
 * {@link #flush()} and on {@link #close()}.
 *
 * <p>Guarantees:
 *
 * <ul>
 *   <li>A reward {@link #add} accepted is never dropped: a batch that fails (runtime unreachable, timeout, 5xx, a
 *       rejected token, ...) stays at the head of the queue and is sent again after a backoff, until it is delivered
 *       or {@link #close()} gives up at its timeout and throws {@link UndeliveredRewardsException} holding every
 *       reward not delivered. Re-sending is safe: a decision takes one reward, so a batch that did arrive before a
 *       failure answers {@code duplicate}.
 *   <li>The queue is bounded ({@code capacity}, counting batches in flight): when it is full, {@link #add} throws
 *       {@link RewardQueueFullException} and the reward is not accepted.
 *   <li>A reward the runtime refuses for itself (unknown decision, attribution window expired, an invalid value:
 *       the error names {@code rewards[i]}) is taken out of its batch and handed to the {@code onRejected} listener
 *       with the runtime's error; the rest of the batch is sent again.
 * </ul>
 */
public final class RewardBatcher implements AutoCloseable {
    private static final Pattern ITEM = Pattern.compile("^rewards\\[(\\d+)]");
    private static final System.Logger LOG = System.getLogger(RewardBatcher.class.getName());

    /** A reward the runtime refused, with its error ({@code error()}, {@code field()}). */
    public record Rejected(Reward reward, CroupierApiException error) {}

    private record Entry(long seq, Reward reward, long enqueuedAt) {}

    private record Waiter(long target, CompletableFuture<Void> future) {}

    private final CroupierClient client;
    private final int maxBatchSize;
    private final long flushIntervalNanos;
    private final int capacity;
    private final Duration closeTimeout;
    private final RetryPolicy backoff;
    private final Consumer<Rejected> onRejected;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition wake = lock.newCondition();
    private final Condition done = lock.newCondition();
    private final ArrayDeque<Entry> queue = new ArrayDeque<>();
    private final List<Waiter> waiters = new ArrayList<>();
    private final Thread worker;
    private long nextSeq;
    private long flushTarget = -1;
    private long isolateThrough = -1;
    private boolean closing;
    private boolean abandoned;
    private boolean finished;
    private Throwable lastError;

    private final AtomicLong accepted = new AtomicLong();
    private final AtomicLong duplicates = new AtomicLong();
    private final AtomicLong rejected = new AtomicLong();
    private final AtomicLong failedRequests = new AtomicLong();

    private RewardBatcher(Builder builder) {
        this.client = builder.client;
        this.maxBatchSize = builder.maxBatchSize;
        this.flushIntervalNanos = builder.flushInterval.toNanos();
        this.capacity = builder.capacity;
        this.closeTimeout = builder.closeTimeout;
        this.backoff = builder.backoff;
        this.onRejected = builder.onRejected;
        this.worker = new Thread(this::run, "croupier-reward-batcher");
        this.worker.setDaemon(true);
        this.worker.start();
    }

    public static Builder builder(CroupierClient client) {
        return new Builder(client);
    }

    /**
     * Queue the reward of a decision. Returns at once; the reward is delivered in the background.
     *
     * @throws RewardQueueFullException when {@code capacity} rewards are not yet delivered (the reward is refused)
     * @throws IllegalStateException after {@link #close()}
     * @throws IllegalArgumentException for an empty decisionId or a non-finite reward
     */
    public void add(String decisionId, double reward) {
        add(new Reward(decisionId, reward));
    }

    public void add(Reward reward) {
        Objects.requireNonNull(reward, "reward");
        lock.lock();
        try {
            if (closing) {
                throw new IllegalStateException("the reward batcher is closed");
            }
            if (queue.size() >= capacity) {
                throw new RewardQueueFullException(capacity);
            }
            queue.addLast(new Entry(nextSeq++, reward, System.nanoTime()));
            if (queue.size() == 1 || queue.size() >= maxBatchSize) {
                wake.signalAll();
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Send what is queued now; the future completes once every reward added before this call was delivered (or
     * refused by the runtime and handed to {@code onRejected}). It waits through failures and retries, so it may
     * complete much later; it fails only when the batcher is closed before.
     */
    public CompletableFuture<Void> flush() {
        lock.lock();
        try {
            CompletableFuture<Void> future = new CompletableFuture<>();
            long target = nextSeq - 1;
            if (queue.isEmpty() || queue.peekFirst().seq() > target) {
                future.complete(null);
                return future;
            }
            if (finished) {
                future.completeExceptionally(new IllegalStateException("the reward batcher is closed"));
                return future;
            }
            waiters.add(new Waiter(target, future));
            flushTarget = Math.max(flushTarget, target);
            wake.signalAll();
            return future;
        } finally {
            lock.unlock();
        }
    }

    /** Rewards accepted by this batcher and not yet delivered (queued or in flight). */
    public int pending() {
        lock.lock();
        try {
            return queue.size();
        } finally {
            lock.unlock();
        }
    }

    /** Rewards the runtime answered {@code accepted} for. */
    public long accepted() {
        return accepted.get();
    }

    /** Rewards the runtime answered {@code duplicate} for (the decision had a reward already). */
    public long duplicates() {
        return duplicates.get();
    }

    /** Rewards the runtime refused (handed to {@code onRejected}). */
    public long rejected() {
        return rejected.get();
    }

    /** Batch requests that failed and were (or will be) sent again. */
    public long failedRequests() {
        return failedRequests.get();
    }

    /**
     * Stop accepting rewards, deliver every queued one, and stop the worker. Waits at most the close timeout.
     *
     * @throws UndeliveredRewardsException when some rewards could not be delivered in time: they are in the
     *     exception, in order (a batch whose last attempt was still in flight is among them: sending it again is
     *     safe, a delivered reward answers duplicate)
     */
    @Override
    public void close() {
        List<Reward> left;
        Throwable error;
        lock.lock();
        try {
            closing = true;
            wake.signalAll();
            long remaining = closeTimeout.toNanos();
            while (!finished && remaining > 0) {
                remaining = done.awaitNanos(remaining);
            }
            if (!finished) {
                abandoned = true;
                wake.signalAll();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            abandoned = true;
            wake.signalAll();
        } finally {
            lock.unlock();
        }
        try {
            worker.join(TimeUnit.NANOSECONDS.toMillis(closeTimeout.toNanos()) + 1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        lock.lock();
        try {
            left = queue.stream().map(Entry::reward).toList();
            error = lastError;
            queue.clear();
            for (Waiter waiter : waiters) {
                waiter.future().completeExceptionally(new IllegalStateException("the reward batcher closed before "
                        + "these rewards were delivered"));
            }
            waiters.clear();
        } finally {
            lock.unlock();
        }
        if (!left.isEmpty()) {
            throw new UndeliveredRewardsException(left, error);
        }
    }

    private boolean due(long now) {
        if (queue.isEmpty()) {
            return false;
        }
        return closing || queue.size() >= maxBatchSize || flushTarget >= queue.peekFirst().seq()
                || now - queue.peekFirst().enqueuedAt() >= flushIntervalNanos;
    }

    private void run() {
        int failures = 0;
        while (true) {
            List<Entry> batch;
            lock.lock();
            try {
                while (!abandoned && !due(System.nanoTime())) {
                    if (queue.isEmpty()) {
                        if (closing) {
                            finish();
                            return;
                        }
                        wake.await();
                    } else {
                        long wait = queue.peekFirst().enqueuedAt() + flushIntervalNanos - System.nanoTime();
                        wake.awaitNanos(Math.max(wait, 1));
                    }
                }
                if (abandoned) {
                    finish();
                    return;
                }
                int size = queue.peekFirst().seq() <= isolateThrough ? 1 : Math.min(maxBatchSize, queue.size());
                batch = new ArrayList<>(size);
                Iterator<Entry> it = queue.iterator();
                while (batch.size() < size) {
                    batch.add(it.next());
                }
            } catch (InterruptedException e) {
                lock.lock();
                try {
                    abandoned = true;
                    finish();
                } finally {
                    lock.unlock();
                }
                return;
            } finally {
                lock.unlock();
            }
            if (send(batch)) {
                failures = 0;
            } else {
                failures++;
                if (!pause(backoff.backoff(failures))) {
                    return;
                }
            }
        }
    }

    /** Deliver one batch; true when it settled (delivered, or an item was taken out), false after a failure. */
    private boolean send(List<Entry> batch) {
        List<Reward> rewards = batch.stream().map(Entry::reward).toList();
        try {
            RewardResponse response = CroupierClient.await(client.postRewards(rewards, RetryPolicy.none()));
            accepted.addAndGet(response.accepted());
            duplicates.addAndGet(response.duplicates());
            settle(batch);
            return true;
        } catch (CroupierApiException e) {
            int index = itemIndex(e, batch.size());
            if (index >= 0) {
                reject(batch.get(index), e);
                return true;
            }
            if ((refusesItems(e) || e.status() == 413) && batch.size() > 1) {
                // The runtime refused something in the batch without naming it, or the batch is larger than its body
                // limit: send these one by one.
                lock.lock();
                try {
                    isolateThrough = Math.max(isolateThrough, batch.get(batch.size() - 1).seq());
                } finally {
                    lock.unlock();
                }
                return true;
            }
            if (refusesItems(e)) {
                reject(batch.get(0), e);
                return true;
            }
            return failed(e);
        } catch (RuntimeException e) {
            return failed(e);
        }
    }

    /** Errors about the rewards themselves (never about the route, the token or the runtime's health). */
    private static boolean refusesItems(CroupierApiException e) {
        return e instanceof CroupierApiException.UnknownDecisionException
                || e instanceof CroupierApiException.AttributionWindowExpiredException
                || (e.status() == 422 && e.field() != null && e.field().startsWith("rewards"));
    }

    private static int itemIndex(CroupierApiException e, int size) {
        if (!refusesItems(e) || e.field() == null) {
            return -1;
        }
        Matcher matcher = ITEM.matcher(e.field());
        if (!matcher.find()) {
            return -1;
        }
        int index = Integer.parseInt(matcher.group(1));
        return index < size ? index : -1;
    }

    private boolean failed(RuntimeException e) {
        failedRequests.incrementAndGet();
        lock.lock();
        try {
            lastError = e;
        } finally {
            lock.unlock();
        }
        LOG.log(System.Logger.Level.WARNING, "reward batch failed, will be sent again: {0}", e.getMessage());
        return false;
    }

    private void settle(List<Entry> batch) {
        lock.lock();
        try {
            for (Entry entry : batch) {
                // The batch is the queue's head, unless close() gave up meanwhile and handed the queue back.
                if (queue.peekFirst() == entry) {
                    queue.removeFirst();
                }
            }
            lastError = null;
            completeWaiters();
        } finally {
            lock.unlock();
        }
    }

    private void reject(Entry entry, CroupierApiException error) {
        lock.lock();
        try {
            queue.remove(entry);
            completeWaiters();
        } finally {
            lock.unlock();
        }
        rejected.incrementAndGet();
        try {
            onRejected.accept(new Rejected(entry.reward(), error));
        } catch (RuntimeException listenerError) {
            LOG.log(System.Logger.Level.ERROR, "the onRejected listener threw", listenerError);
        }
    }

    private void completeWaiters() {
        long head = queue.isEmpty() ? Long.MAX_VALUE : queue.peekFirst().seq();
        waiters.removeIf(waiter -> {
            if (waiter.target() < head) {
                waiter.future().complete(null);
                return true;
            }
            return false;
        });
    }

    /** Wait before the next attempt; false when the batcher was abandoned meanwhile (close timed out). */
    private boolean pause(Duration wait) {
        lock.lock();
        try {
            long remaining = wait.toNanos();
            while (!abandoned && remaining > 0) {
                remaining = wake.awaitNanos(remaining);
            }
            if (abandoned) {
                finish();
                return false;
            }
            return true;
        } catch (InterruptedException e) {
            abandoned = true;
            finish();
            return false;
        } finally {
            lock.unlock();
        }
    }

    private void finish() {
        finished = true;
        done.signalAll();
    }

    /** Configures a {@link RewardBatcher}. */
    public static final class Builder {
        private final CroupierClient client;
        private int maxBatchSize = 500;
        private Duration flushInterval = Duration.ofMillis(200);
        private int capacity = 100_000;
        private Duration closeTimeout = Duration.ofSeconds(10);
        private RetryPolicy backoff = new RetryPolicy(Integer.MAX_VALUE, Duration.ofMillis(100), Duration.ofSeconds(5));
        private Consumer<Rejected> onRejected = r -> LOG.log(System.Logger.Level.WARNING,
                "reward for decision {0} refused by the runtime: {1}", r.reward().decisionId(), r.error().getMessage());

        private Builder(CroupierClient client) {
            this.client = Objects.requireNonNull(client, "client");
        }

        /** Rewards per request, 1 to 1000 (default 500). */
        public Builder maxBatchSize(int size) {
            if (size < 1 || size > CroupierClient.MAX_ITEMS_PER_REQUEST) {
                throw new IllegalArgumentException("maxBatchSize must be within 1.." + CroupierClient.MAX_ITEMS_PER_REQUEST
                        + ", got " + size);
            }
            this.maxBatchSize = size;
            return this;
        }

        /** The longest a reward waits before its batch is sent (default 200 ms). */
        public Builder flushInterval(Duration interval) {
            Objects.requireNonNull(interval, "flushInterval");
            if (interval.isNegative() || interval.isZero()) {
                throw new IllegalArgumentException("flushInterval must be positive, got " + interval);
            }
            this.flushInterval = interval;
            return this;
        }

        /** Rewards accepted and not yet delivered, at most (default 100000); past it {@link #add} refuses. */
        public Builder capacity(int capacity) {
            if (capacity < 1) {
                throw new IllegalArgumentException("capacity must be >= 1, got " + capacity);
            }
            this.capacity = capacity;
            return this;
        }

        /** How long {@link RewardBatcher#close()} keeps delivering (default 10 s). */
        public Builder closeTimeout(Duration timeout) {
            this.closeTimeout = Objects.requireNonNull(timeout, "closeTimeout");
            return this;
        }

        /** The waits between attempts of a failed batch (its maxAttempts is ignored: a batch is sent until delivered). */
        public Builder backoff(RetryPolicy backoff) {
            this.backoff = Objects.requireNonNull(backoff, "backoff");
            return this;
        }

        /** Called on the worker thread for each reward the runtime refused (default: a warning in the log). */
        public Builder onRejected(Consumer<Rejected> listener) {
            this.onRejected = Objects.requireNonNull(listener, "onRejected");
            return this;
        }

        public RewardBatcher build() {
            return new RewardBatcher(this);
        }
    }
}
