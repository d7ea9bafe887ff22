"""Model-scored decisions: what one Predict per decision adds to POST /v1/decide, and what the fallback costs.

    uv run python benchmarks/scoring_decide.py [--requests 2000] [--rounds 3]

One local model server (`croupier-modelserver`, the test ranker SavedModel: inputs `context` [1, 4] and `arms`
[1, 4, 4]) and three runtimes of the same policy (4 arms with 4 features, a 4-feature context, ThompsonSampling), all
on 127.0.0.1, measured in interleaved rounds from one client connection, one request at a time:

- `without scoring`: the policy without spec.scoring (the reference);
- `scored (InverseGap)`: spec.scoring on the ranker, one Predict per decision;
- `fallback (model unreachable)`: spec.scoring on an address nobody listens on: every Predict fails at once
  (UNAVAILABLE) and the policy's own estimates decide;
- `Predict alone`: the same Predict, sent by this process with grpcio's blocking stub (what the model itself costs,
  seen from a client).

Prints a markdown table of p50 and p99 per target (median over the rounds) and what scoring adds to the reference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.savedmodels import RANKER, model_config  # noqa: E402

from croupier.devcluster.ports import free_port  # noqa: E402
from croupier.devcluster.process import Component  # noqa: E402
from croupier.modelserver.process import ModelServerProcess  # noqa: E402
from croupier.runtime.scoring import prediction_service_pb2 as pb  # noqa: E402
from croupier.runtime.scoring.client import PREDICT  # noqa: E402
from croupier.runtime.scoring.tensors import predict_request  # noqa: E402

POLICY = """
apiVersion: croupier.dev/v1alpha1
kind: DecisionPolicy
metadata: {{name: bench-{name}, namespace: bench, generation: 1}}
spec:
  arms:
    - {{name: a, {features}}}
    - {{name: b, {features2}}}
    - {{name: c, {features3}}}
    - {{name: d, {features4}}}
  algorithm: {{type: ThompsonSampling}}
  context: {{features: [w, x, y, z]}}
  exploration: {{minProbability: 0.02}}
  auth: {{mode: Disabled}}
{scoring}
"""
FEATURES = ["[1, 0, 0, 0]", "[0, 1, 0, 0]", "[0, 0, 1, 0]", "[0, 0, 0, 1]"]
SCORING = """  scoring:
    modelDeploymentRef: {name: ranker}
    timeoutMilliseconds: 200
    exploration: {type: InverseGap, inverseGap: {gamma: 50}}
"""
BODY = {"context": {"w": 0.3, "x": -0.2, "y": 0.9, "z": 0.1}}


def policy(name: str, scored: bool, address: str | None) -> str:
    def features(row: str) -> str:
        values = row.strip("[]").split(", ")
        return "features: {" + ", ".join(f"f{i}: {v}" for i, v in enumerate(values)) + "}" if scored else "prior: null"

    text = POLICY.format(
        name=name,
        features=features(FEATURES[0]),
        features2=features(FEATURES[1]),
        features3=features(FEATURES[2]),
        features4=features(FEATURES[3]),
        scoring=SCORING if scored else "",
    )
    if address is not None:
        text += f"scoring: {{address: '{address}', modelName: {RANKER}}}\n"
    return text


class Runtime:
    def __init__(self, name: str, text: str, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        path = work / f"{name}.yaml"
        path.write_text(text)
        command = [
            sys.executable, "-m", "croupier.runtime.cli", "--policy", str(path), "--host", "127.0.0.1",
            "--port", str(self.port), "--state-dir", str(work / name),
        ]  # fmt: skip
        self.component = Component(f"runtime {name}", command, log=work / f"{name}.log").start()
        self.component.wait_ready(
            lambda: httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200,
            timeout=120,
            what=f"runtime {name} /readyz",
            max_interval=0.1,
        )

    def stop(self) -> None:
        self.component.stop(grace=30)


def time_decides(url: str, requests: int) -> list[float]:
    out = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(200):
            client.post("/v1/decide", json=BODY)
        for _ in range(requests):
            started = time.perf_counter()
            answer = client.post("/v1/decide", json=BODY)
            out.append(time.perf_counter() - started)
            answer.raise_for_status()
    return out


def time_predicts(address: str, requests: int) -> list[float]:
    spec = pb.ModelSpec(name=RANKER, version_label="stable", signature_name="serving_default")
    rows = np.eye(4, dtype="<f4")
    request = predict_request(spec, [0.3, -0.2, 0.9, 0.1], 4, rows)
    out = []
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            PREDICT,
            request_serializer=pb.PredictRequest.SerializeToString,
            response_deserializer=pb.PredictResponse.FromString,
        )
        for _ in range(200):
            call(request, timeout=5)
        for _ in range(requests):
            started = time.perf_counter()
            call(request, timeout=5)
            out.append(time.perf_counter() - started)
    return out


def quantile(values: list[float], q: float) -> float:
    return float(np.quantile(np.asarray(values), q)) * 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="Timed decisions per target and round.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="croupier-scoring-bench-") as tmp:
        work = Path(tmp)
        base = work / "models" / RANKER
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        subprocess.run([sys.executable, "-m", "croupier.modelserver.savedmodels", str(base), "1"], check=True, env=env)
        (work / "models.config").write_text(model_config([(RANKER, base, [1], {"stable": 1})]))
        server = ModelServerProcess([f"--model_config_file={work / 'models.config'}"], work / "server.log")
        server.start(ready_model=RANKER, timeout=600)
        closed = f"127.0.0.1:{free_port()}"
        runtimes: dict[str, Runtime] = {}
        try:
            runtimes["without scoring"] = Runtime("plain", policy("plain", False, None), work)
            runtimes["scored (InverseGap)"] = Runtime("scored", policy("scored", True, server.grpc_target), work)
            runtimes["fallback (model unreachable)"] = Runtime("fallback", policy("fallback", True, closed), work)
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in [*runtimes, "Predict alone"]}
            for _ in range(args.rounds):
                for name, runtime in runtimes.items():
                    timed = time_decides(runtime.url, args.requests)
                    results[name].append((quantile(timed, 0.5), quantile(timed, 0.99)))
                timed = time_predicts(server.grpc_target, args.requests)
                results["Predict alone"].append((quantile(timed, 0.5), quantile(timed, 0.99)))
            scored_stats = httpx.get(f"{runtimes['scored (InverseGap)'].url}/v1/stats").json()["scoring"]
            fallback_stats = httpx.get(f"{runtimes['fallback (model unreachable)'].url}/v1/stats").json()["scoring"]
        finally:
            for runtime in runtimes.values():
                runtime.stop()
            server.stop()
    median = {
        name: (statistics.median(p for p, _ in r), statistics.median(q for _, q in r)) for name, r in results.items()
    }
    reference = median["without scoring"]
    print(f"{args.requests} sequential requests per target and round, {args.rounds} rounds (median round)\n")
    print("| target | p50 ms | p99 ms | added p50 ms | added p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (p50, p99) in median.items():
        added = (
            ""
            if name in ("without scoring", "Predict alone")
            else f"{p50 - reference[0]:+.3f} | {p99 - reference[1]:+.3f}"
        )
        print(f"| {name} | {p50:.3f} | {p99:.3f} | {added or '— | —'} |")
    print(f"\nscored runtime: {scored_stats['fallbacks'] or 'no'} fallbacks in {scored_stats['decisions']} decisions")
    print(f"fallback runtime: {fallback_stats['fallbacks']} in {fallback_stats['decisions']} decisions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
