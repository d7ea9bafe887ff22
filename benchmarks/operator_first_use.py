"""What an operator that also serves Experiments and ModelDeployments pays on first use: RSS added, time, and the
longest event-loop stall while each first-use import runs (in a thread, as the observers run it).

    uv run python benchmarks/operator_first_use.py

Prints one table; run it in a fresh process (the imports happen once per process).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def measure(load: Callable[[], Awaitable[None]]) -> tuple[float, float, float]:
    """RSS added (MiB), wall time (s) and the longest loop stall (ms) while ``load`` runs."""
    done = asyncio.Event()
    longest = 0.0

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last - 0.001)
            last = now

    before, start = rss_mib(), time.perf_counter()
    tick = asyncio.create_task(ticker())
    await load()
    elapsed = time.perf_counter() - start
    done.set()
    await tick
    return rss_mib() - before, elapsed, longest * 1000


async def main() -> None:
    import croupier.operator.main  # noqa: F401, PLC0415
    from croupier.operator.experiment.observer import load_statistics  # noqa: PLC0415
    from croupier.operator.modeldeployment.observer import load_model_client  # noqa: PLC0415

    print(f"RSS after importing the operator: {rss_mib():.1f} MiB\n")
    print("| first use | RSS added MiB | time s | longest loop stall ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, load in (("Experiment statistics", load_statistics), ("ModelDeployment client", load_model_client)):
        added, elapsed, stall = await measure(load)
        print(f"| {name} | {added:.1f} | {elapsed:.2f} | {stall:.0f} |")
    print(f"\nRSS after both: {rss_mib():.1f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
