"""HTTP benchmark of the decision API, side by side with a bare ASGI no-op, in one run on one server core.

    uv run python benchmarks/http_decide.py [--duration 8] [--rounds 3] [--connections 32]

Every server is pinned to core 0 (`taskset -c 0`), the load generator `wrk` (Debian package `wrk`) to core 1, with 32
connections posting a decide body. Targets, measured in interleaved rounds (the median round is reported):

- `runtime /v1/decide`: croupier-runtime serving a ThompsonSampling policy, every decision logged to SQLite;
- `runtime /v1/decide (LinUCB, d=8)`: the same with a contextual policy (with --contextual);
- `bare ASGI no-op`: the smallest possible ASGI app on uvicorn with the runtime's uvicorn options: uvloop, httptools,
  no access log, no proxy-headers middleware, no server/date headers (reference b, `benchmarks/http_noop_app.py`;
  the runtime's production app has no benchmark route).
- with `--guard-cost`: the same no-op served through the runtime's own protocol class (`runtime/http/server.py`:
  read deadlines, connection bound, one write per answer, a lasting keep-alive timer) with the runtime's limits.

After the load it checks that the runtime logged every decision it answered. Prints a markdown table.

With `--paced-rate R` it then measures latency at a fixed offered load: the same 32 connections, each pausing between
its requests so that together they offer about R requests/s (wrk's `delay()`), for every target. Closed-loop at full
speed, latency is mostly queueing behind the other 31 connections (mean latency = connections / throughput); paced
below saturation it is the service time plus what scheduling adds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SERVER_CORE = "0"
LOAD_CORE = "1"

THOMPSON = """
apiVersion: croupier.dev/v1alpha1
kind: DecisionPolicy
metadata: {name: bench-thompson, namespace: bench, generation: 1}
spec:
  arms: [{name: blue}, {name: green}, {name: red}, {name: gold}]
  algorithm: {type: ThompsonSampling}
  reward: {type: Binary, attributionWindowSeconds: 3600}
  exploration: {minProbability: 0.01}
"""
LINUCB = """
apiVersion: croupier.dev/v1alpha1
kind: DecisionPolicy
metadata: {name: bench-linucb, namespace: bench, generation: 1}
spec:
  arms: [{name: blue}, {name: green}, {name: red}, {name: gold}]
  algorithm: {type: LinUCB}
  context: {dimension: 8}
  reward: {type: Continuous, attributionWindowSeconds: 3600}
  exploration: {minProbability: 0.01}
"""
DECIDE_BODY = '{"unitId": "player-42"}'
CONTEXT_BODY = '{"unitId": "player-42", "context": [0.5, 1.0, 0.0, 3.2, 0.1, 0.9, 2.0, 0.4]}'

DONE_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT {\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, "
    .. "\\"socket_errors\\": %d, \\"non2xx\\": %d}\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""
BODY_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
"""
# Each connection waits a random time before each request, exponential with this mean (ms): the connections do not
# fall into step (equal fixed delays would send all 32 requests at once), and connections / mean delay is the offered
# load in requests per ms.
PACE_SCRIPT = """
math.randomseed(os.time())
delay = function()
  return math.floor(-math.log(1 - math.random()) * {delay_ms})
end
"""


# Every decision gets its reward: decide, then POST the reward for the id it returned (one wrk thread, so the
# pending id is shared by its connections; a rare id is dropped when two decisions land between two requests).
MIXED_SCRIPT = """
local pending = nil
local headers = {["Content-Type"] = "application/json"}
request = function()
  if pending then
    local body = '{"decisionId":"' .. pending .. '","reward":1}'
    pending = nil
    return wrk.format("POST", "/v1/rewards", headers, body)
  end
  return wrk.format("POST", "/v1/decide", headers, '{"unitId":"player-42"}')
end
response = function(status, headers, body)
  local id = string.match(body, '"decisionId":"(%w+)","arm"')
  if id then pending = id end
end
"""

# The no-op of reference (b) served through the runtime's protocol class (read deadlines, connection bound, JSON
# errors) with the runtime's default limits and otherwise the same uvicorn options (--guard-cost).
GUARDED_NOOP = """
import sys
import uvicorn
from http_noop_app import app
from croupier.runtime.http.server import ConnectionLimits, guarded_protocol
from croupier.runtime.settings import RuntimeSettings
s = RuntimeSettings()
limits = ConnectionLimits(s.header_timeout_seconds, s.body_timeout_seconds, s.max_connections, s.max_body_bytes)
config = uvicorn.Config(
    app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http=guarded_protocol(limits), ws="none",
    timeout_keep_alive=s.keep_alive_timeout_seconds, lifespan="off", access_log=False, log_level="warning",
    server_header=False, date_header=False, proxy_headers=False,
)
uvicorn.Server(config).run()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    label: str
    url: str
    body: str
    results: list[dict[str, float]]
    server: Server | None = None
    token: str | None = None
    """Sent as `Authorization: Bearer <token>` (the runtime with authentication on, --auth)."""


class Server:
    def __init__(
        self, command: list[str], port: int, ready_path: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.port = port
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *command],
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                method = httpx.post if ready_path == "/" else httpx.get
                if method(f"http://127.0.0.1:{port}{ready_path}", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{command} did not start")

    def rss_mib(self) -> float:
        # taskset execs the server, so the pid is the server's.
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def decide_histogram(self) -> tuple[float, float] | None:
        """(sum, count) of the runtime's `croupier_decide_duration_seconds`: time inside the decide call, no HTTP."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return None
        values = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in ("croupier_decide_duration_seconds_sum", "croupier_decide_duration_seconds_count"):
                values[name.rsplit("_", 1)[1]] = float(value)
        return (values["sum"], values["count"]) if len(values) == 2 else None

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process, all threads (the decision log's writer included)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_seconds_off_loop(self) -> float:
        """User + system CPU of the server's threads other than the main one (the event loop runs on the main thread;
        the decision log's writer is the one that counts among the others)."""
        total = 0
        pid = self.process.pid
        for task in Path(f"/proc/{pid}/task").iterdir():
            if task.name == str(pid):
                continue
            with contextlib.suppress(OSError):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_wrk(
    target: Target, duration: float, connections: int, script_dir: Path, paced_rate: float = 0.0
) -> dict[str, float]:
    script = script_dir / f"{abs(hash((target.body, target.token)))}-{paced_rate:g}.lua"
    pace = PACE_SCRIPT.format(delay_ms=round(connections * 1000 / paced_rate)) if paced_rate else ""
    if target.body == "mixed":
        script.write_text(MIXED_SCRIPT + pace + DONE_SCRIPT)
    else:
        auth = f'wrk.headers["Authorization"] = "Bearer {target.token}"\n' if target.token else ""
        script.write_text(BODY_SCRIPT.format(body=json.dumps(target.body)) + auth + pace + DONE_SCRIPT)
    command = [
        "taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
        "-s", str(script), target.url,
    ]  # fmt: skip
    histogram_before = target.server.decide_histogram() if target.server else None
    cpu_before = target.server.cpu_seconds() if target.server else 0.0
    off_loop_before = target.server.cpu_seconds_off_loop() if target.server else 0.0
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = (target.server.cpu_seconds() - cpu_before) if target.server else 0.0
    off_loop = (target.server.cpu_seconds_off_loop() - off_loop_before) if target.server else 0.0
    histogram_after = target.server.decide_histogram() if target.server else None
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["cpu_us"] = cpu * 1e6 / max(1, result["requests"])
    result["off_loop_us"] = off_loop * 1e6 / max(1, result["requests"])
    result["decide_us"] = float("nan")
    if histogram_before and histogram_after and histogram_after[1] > histogram_before[1]:
        decisions = histogram_after[1] - histogram_before[1]
        result["decide_us"] = (histogram_after[0] - histogram_before[0]) * 1e6 / decisions
    return result


def _us(values: Iterable[float]) -> str:
    measured = [v for v in values if not math.isnan(v)]  # NaN: no decisions in that run
    return f"{statistics.median(measured):.1f} us" if measured else "-"


def auth_check_cost() -> None:
    """Nanoseconds of the bearer-token check of one request (`TokenAuthenticator.check`, in this process, pinned to the
    server's core): with spec.auth's 3 default keys and with 32 tokens, best of 9 x 200k calls."""
    import timeit  # noqa: PLC0415

    from croupier.runtime.http.auth import TokenAuthenticator  # noqa: PLC0415

    os.sched_setaffinity(0, {int(SERVER_CORE)})
    headers = [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json"), (b"content-length", b"23")]
    print("| tokens known | check of a valid decide token | of an unknown token |")
    print("| ---: | ---: | ---: |")
    for count in (3, 32):
        with tempfile.TemporaryDirectory() as tmp:
            grants = {f"key{i}": frozenset({"decide" if i == 0 else "admin"}) for i in range(count)}
            for i in range(count):
                (Path(tmp) / f"key{i}").write_text(f"token-{i:04d}-{'x' * 40}\n")
            auth = TokenAuthenticator(Path(tmp), grants)
            good = [*headers, (b"authorization", f"Bearer token-0000-{'x' * 40}".encode())]
            bad = [*headers, (b"authorization", f"Bearer token-9999-{'x' * 40}".encode())]

            def unknown(auth: TokenAuthenticator = auth, bad: list[tuple[bytes, bytes]] = bad) -> None:
                with contextlib.suppress(Exception):
                    auth.check(bad, "decide")

            n = 200_000
            valid = min(timeit.repeat(lambda: auth.check(good, "decide"), number=n, repeat=9)) / n * 1e9  # noqa: B023
            invalid = min(timeit.repeat(unknown, number=n, repeat=9)) / n * 1e9
            print(f"| {count} | {valid:.0f} ns | {invalid:.0f} ns |")


def decode_guard_cost() -> None:
    """Nanoseconds the duplicate-key guard adds to decoding a decide body: `DecideCodec.decode` with and without it,
    in this process (pinned to the server's core), best of 9 x 200k calls each."""
    import timeit  # noqa: PLC0415

    import msgspec  # noqa: PLC0415

    from croupier.runtime.decisions.validation import DecideSchema  # noqa: PLC0415
    from croupier.runtime.http import codec  # noqa: PLC0415

    os.sched_setaffinity(0, {int(SERVER_CORE)})

    class Unguarded(codec.DecideCodec):
        __slots__ = ()

        def decode(self, body: bytes) -> codec.DecideRequest:
            try:
                return codec._decode_decide(body)
            except (msgspec.DecodeError, UnicodeDecodeError):
                self.explain(body)
                raise

    arms = ["blue", "green", "red", "gold"]
    cases = [
        ("ThompsonSampling body", DecideSchema(arms, contextual=False, feature_names=None, size=0), DECIDE_BODY),
        ("LinUCB d=8 body", DecideSchema(arms, contextual=True, feature_names=None, size=8), CONTEXT_BODY),
        (
            "named context body",
            DecideSchema(arms, contextual=True, feature_names=["level", "spend"], size=2),
            '{"unitId": "player-42", "context": {"level": 3, "spend": 0.5}}',
        ),
    ]
    print("| decide body | decode without the guard | with it | difference |")
    print("| --- | ---: | ---: | ---: |")
    for label, schema, text in cases:
        body = text.encode()
        guarded, plain = codec.DecideCodec(schema, arms, "g1"), Unguarded(schema, arms, "g1")
        n = 200_000
        without = min(timeit.repeat(lambda: plain.decode(body), number=n, repeat=9)) / n * 1e9  # noqa: B023
        with_guard = min(timeit.repeat(lambda: guarded.decode(body), number=n, repeat=9)) / n * 1e9  # noqa: B023
        print(f"| {label} | {without:.0f} ns | {with_guard:.0f} ns | {with_guard - without:+.0f} ns |")


def writer_cost(decisions: int = 100_000, block: int = 450) -> None:
    """CPU per decision of the decision log's writer, in this process (pinned to the server's core): the store's own
    transaction (rows built from `Decision`s, multi-row INSERTs, the pull counters, COMMIT) over blocks of `block`
    decisions (about one 50 ms flush at 9,000 decisions/s), and what one row per flushed block would cost instead (the
    same rows as one msgpack blob, one INSERT per block), for comparison."""
    import msgspec  # noqa: PLC0415

    from croupier.runtime.decisions.ids import DecisionIds  # noqa: PLC0415
    from croupier.runtime.decisions.join import JoinRules  # noqa: PLC0415
    from croupier.runtime.decisions.records import Decision  # noqa: PLC0415
    from croupier.runtime.metrics import RuntimeMetrics  # noqa: PLC0415
    from croupier.runtime.store import sqlite  # noqa: PLC0415

    os.sched_setaffinity(0, {int(SERVER_CORE)})
    arms = ["blue", "green", "red", "gold"]
    rules = JoinRules(window=3600.0, default_reward=None, learn=True)
    print(f"\n{decisions:,} decisions committed in blocks of {block}, CPU time per decision\n")
    print("| decisions | the store's transaction | of which building rows | one row per block (msgpack blob) |")
    print("| --- | ---: | ---: | ---: |")
    for label, context in (
        ("ThompsonSampling, 4 arms", None),
        ("LinUCB, d=8", [0.5, 1.0, 0.0, 3.2, 0.1, 0.9, 2.0, 0.4]),
    ):
        ids = DecisionIds()
        now = time.time()
        vectors = [(0.97, 0.01, 0.01, 0.01), (0.01, 0.97, 0.01, 0.01)]
        made = [
            Decision(ids.next(), now, arms[i % 2], i % 2, vectors[i % 2], None, context, "player-42", "v1", now + 3600)
            for i in range(decisions)
        ]
        work = Path(tempfile.mkdtemp(prefix="croupier-writer-"))
        try:
            store = sqlite.SqliteStore(
                work / "log.sqlite3", metrics=RuntimeMetrics(), rules=rules, version="v1", arm_names=arms,
                feature_names=None,
            )  # fmt: skip
            store._restore("bench")
            with contextlib.closing(sqlite.connect(store.path)) as conn:
                started = time.process_time()
                for i in range(0, decisions, block):
                    store._transaction(
                        conn, decisions=made[i : i + block], jobs=[], checkpoint=None, sweep=False, prune=False
                    )
                transaction = time.process_time() - started
                started = time.process_time()
                rows = store._rows(made)
                building = time.process_time() - started
                conn.execute("CREATE TABLE blocks (first TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID")
                encode = msgspec.msgpack.Encoder().encode
                columns = len(rows) // decisions
                started = time.process_time()
                for i in range(0, decisions, block):
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute(
                        "INSERT INTO blocks VALUES (?, ?)",
                        (made[i].decision_id, encode(rows[i * columns : (i + block) * columns])),
                    )
                    conn.execute("COMMIT")
                blocks = time.process_time() - started + building
            print(
                f"| {label} | {transaction / decisions * 1e6:.2f} us | {building / decisions * 1e6:.2f} us | "
                f"{blocks / decisions * 1e6:.2f} us |"
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="Seconds per measurement.")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds; the median is reported.")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--contextual", action="store_true", help="Also measure a LinUCB policy (d=8).")
    parser.add_argument(
        "--rewards", action="store_true", help="Also measure decide + reward for every decision (group commits)."
    )
    parser.add_argument(
        "--paced-rate", type=float, default=0.0, help="Then measure latency at this offered load (requests/s)."
    )
    parser.add_argument(
        "--baseline-python",
        help="Also measure the decide targets of another checkout, served by this interpreter (e.g. an older commit's "
        "`.venv/bin/python`), in the same rounds: a before/after comparison that the machine's drift cannot skew.",
    )
    parser.add_argument(
        "--guard-cost",
        action="store_true",
        help="Also measure the bare no-op behind the runtime's connection guard (runtime/http/server.py), with the "
        "runtime's limits: what the guard costs per request.",
    )
    parser.add_argument(
        "--auth",
        action="store_true",
        help="Also measure the Thompson decide on a second runtime with bearer-token authentication on (--auth-dir, "
        "three tokens as spec.auth's default keys), in the same rounds: what the token check costs per request.",
    )
    parser.add_argument(
        "--auth-check-cost",
        action="store_true",
        help="Only measure the bearer-token check of one request (in process, no HTTP), then exit.",
    )
    parser.add_argument(
        "--decode-guard-cost",
        action="store_true",
        help="Only measure what the duplicate-key guard adds to decoding a decide body (in process), then exit.",
    )
    parser.add_argument(
        "--writer-cost",
        action="store_true",
        help="Only measure the decision log writer's CPU per decision (in process, no HTTP), then exit.",
    )
    args = parser.parse_args()
    if args.auth_check_cost:
        auth_check_cost()
        return 0
    if args.decode_guard_cost:
        decode_guard_cost()
        return 0
    if args.writer_cost:
        writer_cost()
        return 0
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is required (Debian: apt-get install {'wrk' if tool == 'wrk' else 'util-linux'})")
            return 2
    if (os.cpu_count() or 1) < 2:
        print("needs two cores: the server on core 0, wrk on core 1")
        return 2

    work = Path(tempfile.mkdtemp(prefix="croupier-bench-"))
    servers: list[Server] = []
    try:
        runtime_port = free_port()
        (work / "thompson.yaml").write_text(THOMPSON)
        runtime_command = [
            sys.executable, "-m", "croupier.runtime.cli", "--policy", str(work / "thompson.yaml"),
            "--host", "127.0.0.1", "--port", str(runtime_port), "--state-dir", str(work / "state"),
            "--log-level", "warning",
        ]  # fmt: skip
        runtime = Server(runtime_command, runtime_port, "/readyz")
        servers.append(runtime)
        runtime_idle_rss = runtime.rss_mib()
        noop_port = free_port()
        noop_command = [
            *(sys.executable, "-m", "uvicorn", "http_noop_app:app", "--app-dir", str(ROOT / "benchmarks")),
            *f"--host 127.0.0.1 --port {noop_port} --loop uvloop --http httptools --no-access-log".split(),
            *["--no-proxy-headers", "--log-level", "warning", "--no-server-header", "--no-date-header"],
            *["--lifespan", "off"],
        ]
        noop = Server(noop_command, noop_port, "/")
        servers.append(noop)
        runtime_url = f"http://127.0.0.1:{runtime_port}"
        guarded: list[Target] = []
        if args.guard_cost:
            guarded_port = free_port()
            command = [sys.executable, "-c", GUARDED_NOOP, str(guarded_port)]
            guarded_noop = Server(command, guarded_port, "/", cwd=ROOT / "benchmarks")
            servers.append(guarded_noop)
            guarded.append(
                Target(
                    "bare ASGI no-op behind the runtime's connection guard",
                    f"http://127.0.0.1:{guarded_port}/",
                    DECIDE_BODY,
                    [],
                    guarded_noop,
                )
            )
        targets = [
            Target(
                "runtime `POST /v1/decide` (ThompsonSampling, 4 arms, logged)",
                f"{runtime_url}/v1/decide",
                DECIDE_BODY,
                [],
                runtime,
            ),
            *guarded,
            Target("(b) bare ASGI no-op on uvicorn", f"http://127.0.0.1:{noop_port}/", DECIDE_BODY, [], noop),
        ]
        if args.rewards:
            targets.insert(
                1,
                Target("runtime decide, then reward it (reward acked after fsync)", runtime_url, "mixed", [], runtime),
            )
        if args.auth:
            auth_port, auth_dir = free_port(), work / "auth"
            auth_dir.mkdir()
            for key in ("decide", "rewards", "admin"):
                (auth_dir / key).write_text(f"bench-{key}-token-{os.getpid()}\n")
            command = [
                sys.executable, "-m", "croupier.runtime.cli", "--policy", str(work / "thompson.yaml"),
                "--host", "127.0.0.1", "--port", str(auth_port), "--state-dir", str(work / "state-auth"),
                "--log-level", "warning", "--auth-dir", str(auth_dir),
            ]  # fmt: skip
            authenticated = Server(command, auth_port, "/readyz")
            servers.append(authenticated)
            targets.insert(
                1,
                Target(
                    "runtime `POST /v1/decide` (ThompsonSampling, logged), bearer-token auth on",
                    f"http://127.0.0.1:{auth_port}/v1/decide",
                    DECIDE_BODY,
                    [],
                    authenticated,
                    token=f"bench-decide-token-{os.getpid()}",
                ),
            )
        contextual_port = None
        if args.contextual:
            contextual_port = free_port()
            (work / "linucb.yaml").write_text(LINUCB)
            command = [
                sys.executable, "-m", "croupier.runtime.cli", "--policy", str(work / "linucb.yaml"),
                "--host", "127.0.0.1", "--port", str(contextual_port), "--state-dir", str(work / "state"),
                "--log-level", "warning",
            ]  # fmt: skip
            contextual = Server(command, contextual_port, "/readyz")
            servers.append(contextual)
            targets.insert(
                1,
                Target(
                    "runtime `POST /v1/decide` (LinUCB, d=8, logged)",
                    f"http://127.0.0.1:{contextual_port}/v1/decide",
                    CONTEXT_BODY,
                    [],
                    contextual,
                ),
            )
        if args.baseline_python:
            for policy, label, body in [("thompson", "ThompsonSampling", DECIDE_BODY)] + (
                [("linucb", "LinUCB, d=8", CONTEXT_BODY)] if args.contextual else []
            ):
                port = free_port()
                command = [
                    args.baseline_python, "-m", "croupier.runtime.cli", "--policy", str(work / f"{policy}.yaml"),
                    "--host", "127.0.0.1", "--port", str(port), "--state-dir", str(work / "baseline"),
                    "--log-level", "warning",
                ]  # fmt: skip
                baseline = Server(command, port, "/readyz", cwd=work)
                servers.append(baseline)
                targets.insert(
                    len(targets) - 1,
                    Target(
                        f"baseline `POST /v1/decide` ({label}, logged)",
                        f"http://127.0.0.1:{port}/v1/decide",
                        body,
                        [],
                        baseline,
                    ),
                )
        for target in targets:  # warm-up
            run_wrk(target, 2, args.connections, work)
        for _ in range(args.rounds):
            for target in targets:
                target.results.append(run_wrk(target, args.duration, args.connections, work))

        paced: dict[str, list[dict[str, float]]] = {target.label: [] for target in targets}
        if args.paced_rate:
            for _ in range(args.rounds):
                for target in targets:
                    paced[target.label].append(run_wrk(target, args.duration, args.connections, work, args.paced_rate))

        # Every decision answered was logged: the runtime's durable count equals what wrk got back.
        time.sleep(0.5)
        answered = 0
        for target in targets:
            if target.url.endswith("/v1/decide") and f":{runtime_port}/" in target.url:
                measured = target.results + paced[target.label]
                answered += sum(int(r["requests"] - r["non2xx"]) for r in measured)
        stats = httpx.get(f"{runtime_url}/v1/stats").json()
        runtime_loaded_rss = runtime.rss_mib()
        warmup_and_measured = stats["totals"]["decisions"]
        runtime.stop()
        servers.remove(runtime)
        database = work / "state" / "bench.bench-thompson.sqlite3"
        with contextlib.closing(sqlite3.connect(database)) as conn:
            logged = int(conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])

        def middle(results: list[dict[str, float]]) -> dict[str, float]:
            return sorted(results, key=lambda r: r["rps"])[(len(results) - 1) // 2]

        reference = targets[-1].results
        print(
            f"\n{args.rounds} rounds x {args.duration:g} s, {args.connections} connections; server on core "
            f"{SERVER_CORE}, wrk on core {LOAD_CORE}; median round. The 'vs (b)' columns are the median over rounds "
            "of the ratio to (b) measured in the same round (the machine's load drifts between rounds)\n"
        )
        # Server CPU per request (all threads) is what another process on the machine cannot inflate much; its
        # inverse is the throughput one dedicated core would give.
        print(
            "| target | req/s | p50 | p99 | vs (b) | server CPU / request | req/s per CPU-second | vs (b) "
            "| of which off the loop thread | in the decide call | errors |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for target in targets:
            median = middle(target.results)
            cpu_us = statistics.median(r["cpu_us"] for r in target.results)
            off_loop_us = statistics.median(r["off_loop_us"] for r in target.results)
            pairs = list(zip(target.results, reference, strict=True))
            rps_ratio = statistics.median(r["rps"] / b["rps"] for r, b in pairs)
            cpu_ratio = statistics.median(b["cpu_us"] / r["cpu_us"] for r, b in pairs)
            errors = sum(int(r["socket_errors"] + r["non2xx"]) for r in target.results)
            print(
                f"| {target.label} | {median['rps']:,.0f} | {median['p50_us'] / 1000:.2f} ms | "
                f"{median['p99_us'] / 1000:.2f} ms | {rps_ratio:.0%} | {cpu_us:.1f} us | "
                f"{1e6 / cpu_us:,.0f} | {cpu_ratio:.0%} | {off_loop_us:.1f} us | "
                f"{_us(r['decide_us'] for r in target.results)} | {errors} |"
            )
        if args.paced_rate:
            print(
                f"\nPaced: {args.connections} connections, each waiting a random time (exponential, mean "
                f"{round(args.connections * 1000 / args.paced_rate)} ms) before each request (about "
                f"{args.paced_rate:,.0f} requests/s offered); {args.rounds} rounds x {args.duration:g} s, median round "
                "by p99\n"
            )
            print("| target | req/s | p50 | p99 | worst round's p99 | errors |")
            print("| --- | ---: | ---: | ---: | ---: | ---: |")
            for target in targets:
                rounds = sorted(paced[target.label], key=lambda r: r["p99_us"])
                median = rounds[(len(rounds) - 1) // 2]
                errors = sum(int(r["socket_errors"] + r["non2xx"]) for r in rounds)
                print(
                    f"| {target.label} | {median['rps']:,.0f} | {median['p50_us'] / 1000:.2f} ms | "
                    f"{median['p99_us'] / 1000:.2f} ms | {rounds[-1]['p99_us'] / 1000:.2f} ms | {errors} |"
                )
        print(
            f"\nDecisions answered (warm-up included) {warmup_and_measured:,}; rows in the decision log after "
            f"shutdown {logged:,} (measured rounds alone: {answered:,})."
        )
        print(f"Runtime RSS: {runtime_idle_rss:.1f} MiB at start, {runtime_loaded_rss:.1f} MiB after the load.")
        return 0 if logged == warmup_and_measured else 1
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
