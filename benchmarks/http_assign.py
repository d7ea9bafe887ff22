"""HTTP benchmark of the experiment API's assign, side by side with a bare ASGI no-op, in one run on one server core.

    uv run python benchmarks/http_assign.py [--duration 8] [--rounds 3] [--connections 32]

As benchmarks/http_decide.py: every server pinned to core 0 (`taskset -c 0`), `wrk` (Debian package `wrk`) on core 1,
32 connections, interleaved rounds, median reported. Targets:

- `runtime /v1/assign, new unit per request`: croupier-runtime --experiment (embedded SQLite state, three static
  payload variants, sticky): every request assigns a unit never seen before, so every answer also logs an exposure;
- `runtime /v1/assign, returning unit`: the same runtime, one unit asked again and again (the lookup of its record,
  no exposure);
- `bare ASGI no-op`: reference (b) of http_decide.py, the smallest ASGI app on uvicorn with the runtime's options.

After the load it checks that the exposures the runtime counted equal the new units it answered. Prints a table,
then the time of one local assignment (`croupier.api.assignment.Assigner`, what an SDK computes itself) per
algorithm, in process on the server's core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_decide import DONE_SCRIPT, LOAD_CORE, ROOT, SERVER_CORE, Server, free_port

EXPERIMENT = """
apiVersion: croupier.dev/v1alpha1
kind: Experiment
metadata: {name: bench-assign, namespace: bench, generation: 1}
spec:
  variants:
    - {name: control, weight: 34, payload: {offer: none}}
    - {name: discount, weight: 33, payload: {offer: "10%"}}
    - {name: bundle, weight: 33, payload: {offer: bundle}}
  control: control
  assignment: {unitKey: userId, salt: bench, sticky: true}
  metric: {name: conversion, type: Binary}
"""
RETURNING = """
wrk.method = "POST"
wrk.body = '{"unitId": "player-42"}'
wrk.headers["Content-Type"] = "application/json"
"""
# A new unit id per request: a per-thread prefix and a counter (one wrk thread).
NEW_UNITS = """
local n = 0
local headers = {["Content-Type"] = "application/json"}
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/assign", headers, '{"unitId":"{prefix}-' .. n .. '"}')
end
"""


def run_wrk(
    url: str, script: str, *, duration: float, connections: int, work: Path, server: Server
) -> dict[str, float]:
    path = work / f"{abs(hash(script))}.lua"
    path.write_text(script + DONE_SCRIPT)
    command = [
        "taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
        "-s", str(path), url,
    ]  # fmt: skip
    cpu_before, off_loop_before = server.cpu_seconds(), server.cpu_seconds_off_loop()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = server.cpu_seconds() - cpu_before
    off_loop = server.cpu_seconds_off_loop() - off_loop_before
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result: dict[str, float] = json.loads(line.removeprefix("RESULT "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["cpu_us"] = cpu * 1e6 / max(1, result["requests"])
    result["off_loop_us"] = off_loop * 1e6 / max(1, result["requests"])
    return result


def local_assignment() -> None:
    """Microseconds per call of a bound `Assigner.assign` (three variants), best of 7 x 100k calls, on core 0."""
    import timeit  # noqa: PLC0415

    from croupier.api.assignment import Assigner, HashAlgorithm  # noqa: PLC0415

    os.sched_setaffinity(0, {int(SERVER_CORE)})
    print("\n| local assignment (Assigner, 3 variants) | per call |")
    print("| --- | ---: |")
    for algorithm in HashAlgorithm:
        assign = Assigner("checkout-offer-2025-q1", [("a", 34), ("b", 33), ("c", 33)], algorithm).assign
        units = [f"user-{i}" for i in range(100_000)]
        it = iter(units * 8)
        best = min(timeit.repeat(lambda: assign(next(it)), number=100_000, repeat=7)) / 100_000  # noqa: B023
        print(f"| {algorithm.value} | {best * 1e6:.2f} us |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="Seconds per measurement.")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds; the median is reported.")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is required (Debian: apt-get install {'wrk' if tool == 'wrk' else 'util-linux'})")
            return 2
    if (os.cpu_count() or 1) < 2:
        print("needs two cores: the server on core 0, wrk on core 1")
        return 2
    work = Path(tempfile.mkdtemp(prefix="croupier-bench-assign-"))
    servers: list[Server] = []
    try:
        (work / "experiment.yaml").write_text(EXPERIMENT)
        port = free_port()
        command = [
            sys.executable, "-m", "croupier.runtime.cli", "--experiment", str(work / "experiment.yaml"),
            "--host", "127.0.0.1", "--port", str(port), "--state-dir", str(work / "state"), "--log-level", "warning",
        ]  # fmt: skip
        runtime = Server(command, port, "/readyz")
        servers.append(runtime)
        noop_port = free_port()
        noop = Server(
            [
                *(sys.executable, "-m", "uvicorn", "http_noop_app:app", "--app-dir", str(ROOT / "benchmarks")),
                *f"--host 127.0.0.1 --port {noop_port} --loop uvloop --http httptools --no-access-log".split(),
                *["--no-proxy-headers", "--log-level", "warning", "--no-server-header", "--no-date-header"],
                *["--lifespan", "off"],
            ],
            noop_port,
            "/",
        )
        servers.append(noop)
        assign_url = f"http://127.0.0.1:{port}/v1/assign"
        results: dict[str, list[dict[str, float]]] = {"new": [], "returning": [], "noop": []}
        new_units = 0
        for round_ in range(args.rounds + 1):  # round 0 warms up and is not reported
            options = {"duration": args.duration, "connections": args.connections, "work": work}
            new = run_wrk(assign_url, NEW_UNITS.replace("{prefix}", f"r{round_}"), server=runtime, **options)
            new_units += int(new["requests"]) - int(new["non2xx"])
            returning = run_wrk(assign_url, RETURNING, server=runtime, **options)
            bare = run_wrk(f"http://127.0.0.1:{noop_port}/", RETURNING, server=noop, **options)
            if round_:
                results["new"].append(new)
                results["returning"].append(returning)
                results["noop"].append(bare)
        time.sleep(0.3)  # the last exposures' commit (flush interval 50 ms)
        stats = httpx.get(f"http://127.0.0.1:{port}/v1/stats", timeout=10).json()

        print(
            f"\n{args.rounds} rounds x {args.duration:g} s, {args.connections} connections; server on core "
            f"{SERVER_CORE}, wrk on core {LOAD_CORE}; median round; 'vs (b)' is the median over rounds of the ratio "
            "to (b) measured in the same round\n"
        )
        print(
            "| target | req/s | p50 | p99 | vs (b) req/s | server CPU per request | of which off the event loop "
            "(SQLite writer) | vs (b) CPU | errors |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        labels = {
            "new": "runtime /v1/assign, new unit per request (exposure logged)",
            "returning": "runtime /v1/assign, returning unit",
            "noop": "(b) bare ASGI no-op",
        }
        for key, label in labels.items():
            rounds = results[key]
            median = sorted(rounds, key=lambda r: r["rps"])[(len(rounds) - 1) // 2]
            pairs = list(zip(rounds, results["noop"], strict=True))
            ratio = statistics.median(r["rps"] / b["rps"] for r, b in pairs)
            cpu_ratio = statistics.median(b["cpu_us"] / r["cpu_us"] for r, b in pairs)
            errors = sum(int(r["socket_errors"] + r["non2xx"]) for r in rounds)
            print(
                f"| {label} | {median['rps']:,.0f} | {median['p50_us'] / 1000:.2f} ms | {median['p99_us'] / 1000:.2f} "
                f"ms | {ratio:.0%} | {statistics.median(r['cpu_us'] for r in rounds):.1f} us | "
                f"{statistics.median(r['off_loop_us'] for r in rounds):.1f} us | {cpu_ratio:.0%} | {errors} |"
            )
        # Every new unit answered is one counted exposure, plus the returning unit's, plus the requests in flight when
        # each wrk run ended (answered, logged, not counted by wrk): at most one per connection and run.
        exposures, answered = stats["totalExposures"], new_units + 1
        in_flight = (args.rounds + 1) * args.connections
        print(f"\nExposures counted: {exposures:,}; new units wrk counted answered + 1: {answered:,}.")
        local_assignment()
        return 0 if answered <= exposures <= answered + in_flight else 1
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
