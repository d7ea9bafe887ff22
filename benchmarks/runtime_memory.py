"""Memory of the runtime: RSS at idle and after one million decisions, in process, with every decision logged.

    uv run python benchmarks/runtime_memory.py [--decisions 1000000] [--policy thompson|linucb]

Builds the same Runtime the server runs (real policy, real SQLite store in a temporary directory), calls the decide
path directly (no HTTP), lets the writer commit everything, and prints RSS and the decision log's size on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from croupier.runtime.assembly import Runtime
from croupier.runtime.http.codec import DecideCodec
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policy_file import parse_policy
from croupier.runtime.settings import RuntimeSettings

POLICIES = {
    "thompson": (
        {
            "arms": [{"name": n} for n in ("blue", "green", "red", "gold")],
            "algorithm": {"type": "ThompsonSampling"},
            "reward": {"type": "Binary", "attributionWindowSeconds": 3600},
            "exploration": {"minProbability": 0.01},
        },
        b'{"unitId": "player-42"}',
    ),
    "linucb": (
        {
            "arms": [{"name": n} for n in ("blue", "green", "red", "gold")],
            "algorithm": {"type": "LinUCB"},
            "context": {"dimension": 8},
            "reward": {"type": "Continuous", "attributionWindowSeconds": 3600},
        },
        b'{"unitId": "player-42", "context": [0.5, 1.0, 0.0, 3.2, 0.1, 0.9, 2.0, 0.4]}',
    ),
}


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(decisions: int, policy: str) -> None:
    spec, body = POLICIES[policy]
    document = {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": f"memory-{policy}", "namespace": "bench", "generation": 1},
        "spec": spec,
    }
    served = parse_policy(yaml.safe_load(yaml.safe_dump(document)))
    work = Path(tempfile.mkdtemp(prefix="croupier-memory-"))
    try:
        runtime = Runtime(RuntimeSettings(state_dir=work, seed=1), served, metrics=RuntimeMetrics())
        await runtime.start()
        await asyncio.sleep(0.2)
        idle = rss_mib()
        service = runtime.service
        codec = DecideCodec(service.schema, service.arm_names, served.version)
        decode, decide, encode = codec.decode, service.decide, codec.encode
        backlog = runtime.metrics.pending_decisions

        def waiting() -> int:
            return int(next(iter(backlog.collect())).samples[0].value)

        started = time.perf_counter()
        peak_backlog = 0
        for i in range(decisions):
            encode(decide(decode(body)))  # what the decide route does, without HTTP
            if i % 1000 == 999:
                peak_backlog = max(peak_backlog, waiting())
                await asyncio.sleep(0)  # the writer's commits are delivered on the loop
                while waiting() > 50_000:  # the server would answer 503 past its bound
                    await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        during = rss_mib()
        while waiting():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        gc.collect()
        after = rss_mib()
        await runtime.stop()
        size = sum(p.stat().st_size for p in work.iterdir())
        print(
            f"\n{policy}: {decisions:,} decisions in {elapsed:.1f} s "
            f"({decisions / elapsed:,.0f}/s in process, logged)\n"
        )
        print("| RSS | MiB |")
        print("| --- | ---: |")
        print(f"| idle, after start | {idle:.1f} |")
        print(f"| right after {decisions:,} decisions (writer backlog peak {peak_backlog:,}) | {during:.1f} |")
        print(f"| after the decision log caught up | {after:.1f} |")
        print(f"\nDecision log on disk: {size / 2**20:.0f} MiB ({size / decisions:.0f} bytes per decision).")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--policy", choices=sorted(POLICIES), default="thompson")
    args = parser.parse_args()
    asyncio.run(measure(args.decisions, args.policy))


if __name__ == "__main__":
    main()
