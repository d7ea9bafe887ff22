"""HTTP benchmark of `POST /v1/rank` (k=3 of 5 arms) beside `POST /v1/decide` on the same runtime and the bare ASGI
no-op, in one run on one server core.

    uv run python benchmarks/http_rank.py [--duration 2] [--rounds 6] [--connections 32]

The machinery is `benchmarks/http_decide.py`'s (server on core 0, `wrk` on core 1, interleaved rounds after a 2 s
warm-up, the median round, server CPU per request from /proc). Targets, all in the same rounds:

- `runtime /v1/decide`: croupier-runtime serving a 5-arm ThompsonSampling policy, every decision logged to SQLite;
- `runtime /v1/rank k=3`: the same runtime ranking 3 of the 5 arms (three logged decisions per request);
- `runtime /v1/rank k=5`: all five;
- `(b) bare ASGI no-op on uvicorn` (`benchmarks/http_noop_app.py`).

Afterwards it checks that the decision log holds one row per decide answer and per ranked position. Prints a markdown
table; the results are in docs/benchmarks/http.md.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from http_decide import LOAD_CORE, ROOT, SERVER_CORE, Server, Target, free_port, run_wrk

THOMPSON5 = """
apiVersion: croupier.dev/v1alpha1
kind: DecisionPolicy
metadata: {name: bench-rank, namespace: bench, generation: 1}
spec:
  arms: [{name: blue}, {name: green}, {name: red}, {name: gold}, {name: plum}]
  algorithm: {type: ThompsonSampling}
  reward: {type: Binary, attributionWindowSeconds: 3600}
  exploration: {minProbability: 0.01}
"""
DECIDE_BODY = '{"unitId": "player-42"}'
RANK3_BODY = '{"unitId": "player-42", "k": 3}'
RANK5_BODY = '{"unitId": "player-42", "k": 5}'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (make bench-deps)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="croupier-bench-rank-"))
    servers: list[Server] = []
    try:
        port = free_port()
        (work / "policy.yaml").write_text(THOMPSON5)
        command = [
            sys.executable, "-m", "croupier.runtime.cli", "--policy", str(work / "policy.yaml"),
            "--host", "127.0.0.1", "--port", str(port), "--state-dir", str(work / "state"), "--log-level", "warning",
        ]  # fmt: skip
        runtime = Server(command, port, "/readyz")
        servers.append(runtime)
        noop_port = free_port()
        noop_command = [
            *(sys.executable, "-m", "uvicorn", "http_noop_app:app", "--app-dir", str(ROOT / "benchmarks")),
            *f"--host 127.0.0.1 --port {noop_port} --loop uvloop --http httptools --no-access-log".split(),
            *["--no-proxy-headers", "--log-level", "warning", "--no-server-header", "--no-date-header"],
            *["--lifespan", "off"],
        ]
        noop = Server(noop_command, noop_port, "/")
        servers.append(noop)
        url = f"http://127.0.0.1:{port}"
        targets = [
            Target(
                "runtime `POST /v1/decide` (ThompsonSampling, 5 arms, logged)",
                f"{url}/v1/decide",
                DECIDE_BODY,
                [],
                runtime,
            ),
            Target("runtime `POST /v1/rank` k=3 of 5 (3 decisions logged)", f"{url}/v1/rank", RANK3_BODY, [], runtime),
            Target("runtime `POST /v1/rank` k=5 of 5 (5 decisions logged)", f"{url}/v1/rank", RANK5_BODY, [], runtime),
            Target("(b) bare ASGI no-op on uvicorn", f"http://127.0.0.1:{noop_port}/", DECIDE_BODY, [], noop),
        ]
        positions = {DECIDE_BODY: 1, RANK3_BODY: 3, RANK5_BODY: 5}
        script_dir = work / "scripts"
        script_dir.mkdir()
        for target in targets:
            run_wrk(target, 2, args.connections, script_dir)  # warm-up
        for _ in range(args.rounds):
            for target in targets:
                result = run_wrk(target, args.duration, args.connections, script_dir)
                target.results.append(result)
        time.sleep(0.5)
        answered = httpx.get(f"{url}/v1/stats").json()["totals"]["decisions"]
        runtime.stop()
        servers.remove(runtime)
        with contextlib.closing(sqlite3.connect(work / "state" / "bench.bench-rank.sqlite3")) as conn:
            logged = int(conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])
            ranked = dict(conn.execute("SELECT position, COUNT(*) FROM decisions GROUP BY position").fetchall())

        def middle(results: list[dict[str, float]]) -> dict[str, float]:
            return sorted(results, key=lambda r: r["rps"])[(len(results) - 1) // 2]

        reference = targets[-1].results
        print(
            f"\n{args.rounds} rounds x {args.duration:g} s, {args.connections} connections; server on core "
            f"{SERVER_CORE}, wrk on core {LOAD_CORE}; median round; 'vs (b)' is the median over rounds of the ratio "
            "to (b) in the same round\n"
        )
        print(
            "| target | req/s | p50 | p99 | server CPU / request | per position | req/s per CPU-second | vs (b) "
            "| errors |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for target in targets:
            median = middle(target.results)
            cpu_us = statistics.median(r["cpu_us"] for r in target.results)
            cpu_ratio = statistics.median(
                b["cpu_us"] / r["cpu_us"] for r, b in zip(target.results, reference, strict=True)
            )
            errors = sum(int(r["socket_errors"] + r["non2xx"]) for r in target.results)
            per = positions[target.body] if target.server is runtime else 1
            print(
                f"| {target.label} | {median['rps']:,.0f} | {median['p50_us'] / 1000:.2f} ms | "
                f"{median['p99_us'] / 1000:.2f} ms | {cpu_us:.1f} us | {cpu_us / per:.1f} us | {1e6 / cpu_us:,.0f} | "
                f"{cpu_ratio:.0%} | {errors} |"
            )
        print(
            f"\nDecisions answered (warm-up included: decide answers plus ranked positions) {answered:,}; rows in the "
            f"decision log after shutdown {logged:,}, by position {ranked}."
        )
        return 0 if logged == answered else 1
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
