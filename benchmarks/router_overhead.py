"""Overhead of the model router: Predict through the router vs straight to the model server, same run, REST and gRPC.

    uv run python benchmarks/router_overhead.py [--requests 2000] [--concurrency 8] [--weight 10] [--api REST|gRPC]
        [--impl python|go|both] [--compare GIT-REF] [--compare-go GIT-REF] [--uvloop]

The local model server (croupier-modelserver) serves the test ranker, versions 1 and 2 under the labels stable and
canary; `croupier-runtime router` runs in front of it as its own process with the routing table at `--weight` percent
canary. Both paths get the same requests from the stock clients (the `tensorflow_serving.apis` PredictionService stub
over one channel, a keep-alive httpx client posting TF Serving's row format), naming no version. Latency: one client,
sequential requests, direct and routed interleaved in rounds (p50/p99 and the added p50/p99). Throughput:
`--concurrency` client threads for a fixed number of requests, direct then routed (requests per second and the
ratio). Prints markdown tables; the client runs on the same machine and shares its cores with both servers.

`--impl` picks the routers: `python` (`croupier-runtime router`, the path named `router`), `go` (the compiled
`croupier-modelrouter` from runtime/gorouter/build.sh, the path named `gorouter`) or `both` (the default), all on the
same model server and in the same interleaved rounds.

`--compare REF` runs a second router beside the first, with runtime/modelrouter as it is at the git commit REF (the
rest of the package from the working tree), on the same model server and in the same rounds: the A/B of a change in
one run. `--compare-go REF` does the same for the compiled router: runtime/gorouter as it is at REF, built by its
own build.sh (cached by its sources), the path named `gorouter@REF`. `--uvloop` adds a copy of the working tree's
router on uvloop's event loop.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from croupier.devcluster.modelrouter import gorouter_binary
from croupier.modelserver.process import ModelServerProcess, free_port
from croupier.modelserver.savedmodels import write_ranker

CONFIG = """model_config_list {{ config {{ name: "ranker" base_path: "{base}" model_platform: "tensorflow"
  model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
  version_labels {{ key: "stable" value: 1 }} version_labels {{ key: "canary" value: 2 }} }} }}
"""


# Runs `croupier-runtime router` with croupier.runtime.modelrouter loaded from another folder and/or on uvloop.
LAUNCHER = """
import importlib.util, sys
source, use_uvloop, argv = sys.argv[1], sys.argv[2] == "uvloop", sys.argv[3:]
if source:
    import croupier.runtime
    spec = importlib.util.spec_from_file_location(
        "croupier.runtime.modelrouter", source + "/__init__.py", submodule_search_locations=[source]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["croupier.runtime.modelrouter"] = module
    spec.loader.exec_module(module)
if use_uvloop:
    import uvloop
    uvloop.install()
from croupier.runtime.cli import main
sys.exit(main(["router", *argv]))
"""


def extract(ref: str, folder: str, work: Path) -> Path:
    """``folder`` of the repository as it is at git commit ``ref``, extracted under ``work``."""
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(repo), "archive", ref, folder], check=True, capture_output=True).stdout
    target = work / f"src-{ref.replace('/', '_')}-{folder.replace('/', '_')}"
    target.mkdir()
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / folder


def checkout_router(ref: str, work: Path) -> Path:
    """runtime/modelrouter as it is at git commit ``ref``, extracted under ``work``."""
    return extract(ref, "runtime/modelrouter", work)


def build_gorouter(ref: str, work: Path) -> Path:
    """croupier-modelrouter built by its own build.sh from runtime/gorouter as it is at git commit ``ref``."""
    source = extract(ref, "runtime/gorouter", work)
    built = subprocess.run(["bash", str(source / "build.sh")], check=True, capture_output=True, text=True)
    return Path(built.stdout.strip().splitlines()[-1])


def start_router(
    work: Path, server: ModelServerProcess, weight: float, *, name: str = "router", source: Path | None = None,
    uvloop: bool = False, binary: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str, str]:  # fmt: skip
    routing = work / "routing.json"
    routing.write_text(json.dumps({"models": {"ranker": {"stable": 1, "canary": 2, "canaryWeight": weight}}}))
    rest_port, grpc_port = free_port(), free_port()
    launcher = (
        [str(binary)]
        if binary is not None
        else [sys.executable, "-c", LAUNCHER, str(source or ""), "uvloop" if uvloop else "asyncio"]
    )
    command = [
        *launcher,
        f"--rest-port={rest_port}", f"--grpc-port={grpc_port}",
        f"--upstream-rest={server.rest_url}", f"--upstream-grpc={server.grpc_target}", f"--routing-file={routing}",
        "--log-level=warning",
    ]  # fmt: skip
    with (work / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{rest_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (work / f"{name}.log").read_text()[-2000:]
            raise RuntimeError(f"{name} exited with {process.returncode}: {tail}")
        try:
            if httpx.get(url + "/metrics", timeout=1).status_code == 200:
                return process, url, f"127.0.0.1:{grpc_port}"
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise TimeoutError(f"{name} did not start within 60 s")


def cpu_seconds(pid: int) -> float:
    """CPU time of all a process's threads so far (Linux schedstat, in ns), to charge the router its own work."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def timed(call: Callable[[], object], count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def throughput(make_call: Callable[[], Callable[[], object]], requests: int, concurrency: int) -> float:
    share = requests // concurrency

    def worker(_: int) -> None:
        call = make_call()
        for _ in range(share):
            call()

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    return share * concurrency / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="Per path and mode (latency and throughput).")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--weight", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--api", choices=["REST", "gRPC"], action="append", help="Only these APIs (default: both).")
    parser.add_argument(
        "--impl", choices=["python", "go", "both"], default="both", help="Which routers (default: both)."
    )
    parser.add_argument("--compare", metavar="REF", help="Also a router with runtime/modelrouter at this git commit.")
    parser.add_argument(
        "--compare-go", metavar="REF", help="Also the compiled router built from runtime/gorouter at this git commit."
    )
    parser.add_argument("--uvloop", action="store_true", help="Also the working tree's router on uvloop.")
    args = parser.parse_args()
    apis = args.api or ["REST", "gRPC"]

    rng = np.random.default_rng(0)
    context = rng.random((1, 4)).astype(np.float32)
    arms = rng.random((1, 8, 4)).astype(np.float32)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "ranker"
    request.inputs["context"].CopyFrom(tf.make_tensor_proto(context))
    request.inputs["arms"].CopyFrom(tf.make_tensor_proto(arms))
    body = {"instances": [{"context": context[0].tolist(), "arms": arms[0].tolist()}]}

    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        work = Path(tmp)
        base = work / "ranker"
        write_ranker(base, 1)
        write_ranker(base, 2)
        (work / "models.config").write_text(CONFIG.format(base=base))
        server = ModelServerProcess([f"--model_config_file={work / 'models.config'}"], work / "server.log")
        variants: list[tuple[str, Path | None, bool, Path | None]] = []
        if args.impl in ("python", "both"):
            variants.append(("router", None, False, None))
        if args.impl in ("go", "both"):
            variants.append(("gorouter", None, False, gorouter_binary()))
        if args.compare:
            variants.append((f"router@{args.compare}", checkout_router(args.compare, work), False, None))
        if args.compare_go:
            variants.append((f"gorouter@{args.compare_go}", None, False, build_gorouter(args.compare_go, work)))
        if args.uvloop:
            variants.append(("router+uvloop", None, True, None))
        with server.start(ready_model="ranker"):
            routers: dict[str, subprocess.Popen[bytes]] = {}
            targets = {"direct": (server.rest_url, server.grpc_target)}
            try:
                for name, source, uvloop, binary in variants:
                    process, rest, grpc_target = start_router(
                        work, server, args.weight, name=name, source=source, uvloop=uvloop, binary=binary
                    )
                    routers[name] = process
                    targets[name] = (rest, grpc_target)
                channels = {name: grpc.insecure_channel(t[1]) for name, t in targets.items()}

                def rest_call(url: str) -> Callable[[], object]:
                    client = httpx.Client(base_url=url, timeout=30)

                    def call() -> object:
                        answer = client.post("/v1/models/ranker:predict", json=body)
                        answer.raise_for_status()
                        return answer

                    return call

                def grpc_call(name: str) -> Callable[[], object]:
                    stub = prediction_service_pb2_grpc.PredictionServiceStub(channels[name])
                    return lambda: stub.Predict(request, timeout=30)

                makers: dict[tuple[str, str], Callable[[], Callable[[], object]]] = {}
                for name, (rest_url, _) in targets.items():
                    if "REST" in apis:
                        makers[("REST", name)] = lambda url=rest_url: rest_call(url)  # type: ignore[misc]
                    if "gRPC" in apis:
                        makers[("gRPC", name)] = lambda n=name: grpc_call(n)  # type: ignore[misc]
                calls = {key: make() for key, make in makers.items()}
                for call in calls.values():
                    timed(call, 100)  # warm-up: connections, the graph's first runs
                latency: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
                # a router's CPU seconds while it served that API's requests
                router_cpu = {(api, name): 0.0 for api in apis for name in routers}
                per_round = max(1, args.requests // args.rounds)
                for _ in range(args.rounds):
                    for key, call in calls.items():
                        router = routers.get(key[1])
                        before = cpu_seconds(router.pid) if router else 0.0
                        latency[key] += timed(call, per_round)
                        if router:
                            router_cpu[key] += cpu_seconds(router.pid) - before
                rates = {key: throughput(make, args.requests, args.concurrency) for key, make in makers.items()}
                for channel in channels.values():
                    channel.close()
            finally:
                for router in routers.values():
                    router.send_signal(signal.SIGTERM)
                for router in routers.values():
                    router.wait(timeout=15)

    print(
        f"Predict on the ranker (batch 1, 8 arms, d=4), canary weight {args.weight}%; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores\n"
    )
    print(f"Latency: one client, {per_round * args.rounds} sequential requests per path in {args.rounds} rounds\n")
    print("| API | path | p50 ms | p99 ms | added p50 ms | added p99 ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for api in apis:
        d50, d99 = (float(np.percentile(latency[(api, "direct")], q)) for q in (50, 99))
        for name in targets:
            p50, p99 = (float(np.percentile(latency[(api, name)], q)) for q in (50, 99))
            added = f"{p50 - d50:+.3f} | {p99 - d99:+.3f}" if name != "direct" else "— | —"
            print(f"| {api} | {name} | {p50:.3f} | {p99:.3f} | {added} |")
    print(f"\nThroughput: {args.concurrency} client threads, {args.requests} requests per path\n")
    print("| API | path | req/s | ratio to direct |")
    print("| --- | --- | ---: | ---: |")
    for api in apis:
        direct = rates[(api, "direct")]
        for name in targets:
            ratio = f"{rates[(api, name)] / direct:.2f}x" if name != "direct" else "—"
            print(f"| {api} | {name} | {rates[(api, name)]:.0f} | {ratio} |")

    routed = per_round * args.rounds
    print("\nRouter CPU time (all its threads) per routed request in the latency runs\n")
    print("| API | router | CPU µs per request |")
    print("| --- | --- | ---: |")
    for api in apis:
        for name in routers:
            print(f"| {api} | {name} | {router_cpu[(api, name)] / routed * 1e6:.0f} |")


if __name__ == "__main__":
    main()
