"""The router in front of the local model server, over real SavedModels: the split follows the weight (counted by the
served-version header, checked against each answer's scores and the model server's own counters), units stick,
a weight change is honoured within 5 s, explicit versions and labels pass through, gRPC through TF Serving's stock
stubs, and TF Serving's error shapes (the model server unreachable included).
The router runs as a real process (`croupier-runtime router`, and the compiled `croupier-modelrouter`: every test runs
against both, see conftest.py), the model server too, both on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from support.modelrouting import router_command
from support.savedmodels import DIMS, RANKER, model_config
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from croupier.modelserver.process import ModelServerProcess, free_port
from croupier.modelserver.savedmodels import expected_scores, write_ranker
from croupier.operator.modeldeployment.canary.measurement import Measurement, Window
from croupier.operator.modeldeployment.canary.runtimestats import ROUTER, RuntimeStats, Targets

MONITORING = 'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'
STABLE, CANARY = 1, 2


@dataclass
class RouterProcess:
    """A model router as a child process; ``set_weight`` writes the routing file as the operator does."""

    routing_file: Path
    upstream_rest: str
    upstream_grpc: str
    log: Path
    implementation: str = "python"
    host: str = "127.0.0.1"
    environment: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.rest_port = free_port(self.host)
        self.grpc_port = free_port(self.host)

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def write_table(self, weight: float, *, salt: str = "ranker", canary: int | None = CANARY) -> None:
        model: dict[str, object] = {"stable": STABLE, "canaryWeight": weight}
        if canary is not None:
            model["canary"] = canary
        staged = self.routing_file.with_suffix(".tmp")
        staged.write_text(json.dumps({"salt": salt, "models": {RANKER: model}}))
        staged.replace(self.routing_file)  # atomic, as kubelet swaps the ..data symlink

    def start(self, timeout: float = 30.0) -> RouterProcess:
        command = [
            *router_command(self.implementation),
            f"--rest-port={self.rest_port}", f"--grpc-port={self.grpc_port}", f"--host={self.host}",
            f"--upstream-rest={self.upstream_rest}", f"--upstream-grpc={self.upstream_grpc}",
            f"--routing-file={self.routing_file}", "--log-level=warning",
        ]  # fmt: skip
        with self.log.open("ab") as out:
            env = {**os.environ, **(self.environment or {})}
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the router exited with {self.process.returncode}: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.rest_url + "/metrics", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"the router did not answer within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples carrying ``labels``, read from the router's /metrics."""
        text = httpx.get(self.rest_url + "/metrics", timeout=5).text
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def wait_for_weight(self, weight: float, timeout: float = 5.0) -> float:
        """Seconds until the router reports ``weight``; fails after ``timeout``."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.metric("croupier_router_canary_weight", model=RANKER) == weight:
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"the router did not take weight {weight} within {timeout} s")


@pytest.fixture(scope="session")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServerProcess]:
    base = tmp_path_factory.mktemp("models") / RANKER
    write_ranker(base, STABLE)
    write_ranker(base, CANARY)
    work = tmp_path_factory.mktemp("modelserver")
    (work / "models.config").write_text(
        model_config([(RANKER, base, [STABLE, CANARY], {"stable": STABLE, "canary": CANARY})])
    )
    (work / "monitoring.config").write_text(MONITORING)
    server = ModelServerProcess(
        [f"--model_config_file={work / 'models.config'}", f"--monitoring_config_file={work / 'monitoring.config'}"],
        work / "server.log",
    )
    with server.start(ready_model=RANKER):
        yield server


@pytest.fixture(scope="session")
def router(
    model_server: ModelServerProcess, tmp_path_factory: pytest.TempPathFactory, implementation: str
) -> Iterator[RouterProcess]:
    work = tmp_path_factory.mktemp(f"router-{implementation}")
    process = RouterProcess(
        work / "routing.json", model_server.rest_url, model_server.grpc_target, work / "router.log", implementation
    )
    process.write_table(0)
    process.start()
    try:
        yield process
    finally:
        process.stop()


CONTEXT = [[0.3] * DIMS]
ARMS = [[[0.1 * (i + 1)] * DIMS for i in range(3)]]
BODY = {"instances": [{"context": CONTEXT[0], "arms": ARMS[0]}]}
PREDICT = f"/v1/models/{RANKER}:predict"
SCORES = {v: expected_scores(v, CONTEXT, ARMS)[0] for v in (STABLE, CANARY)}


def served_by_scores(scores: Any) -> int:
    """Which version computed ``scores`` (versions 1 and 2 have different weights)."""
    matches = [v for v, expected in SCORES.items() if np.allclose(scores, expected, rtol=1e-5)]
    assert len(matches) == 1, scores
    return matches[0]


def serving_requests(server: ModelServerProcess) -> float:
    """The model server's own count of the ranker's successful requests (all APIs)."""
    text = httpx.get(server.rest_url + "/monitoring/prometheus/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        ranker = f'model_name="{RANKER}"' in line and 'status="OK"' in line
        if line.startswith(":tensorflow:serving:request_count{") and ranker:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def rest_predicts(router: RouterProcess, count: int, units: list[str] | None = None) -> list[tuple[int, int]]:
    """(header version, version by the scores) of ``count`` predictions, 16 in flight."""
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=router.rest_url, limits=limits, timeout=30) as client:
        semaphore = asyncio.Semaphore(16)

        async def one(i: int) -> tuple[int, int]:
            headers = {"x-croupier-unit": units[i % len(units)]} if units else {}
            async with semaphore:
                answer = await client.post(PREDICT, json=BODY, headers=headers)
            assert answer.status_code == 200, answer.text
            return int(answer.headers["x-croupier-model-version"]), served_by_scores(answer.json()["predictions"][0])

        return list(await asyncio.gather(*(one(i) for i in range(count))))


@pytest.mark.parametrize("weight", [30, 5])
def test_rest_split_matches_the_weight(router: RouterProcess, model_server: ModelServerProcess, weight: int) -> None:
    router.write_table(weight)
    router.wait_for_weight(weight)
    before_server = serving_requests(model_server)
    before = {v: router.metric("croupier_router_requests_total", version=str(v), code="OK") for v in (STABLE, CANARY)}
    start = datetime.now(UTC)

    async def run() -> tuple[list[tuple[int, int]], object]:
        async with httpx.AsyncClient() as client:
            stats = RuntimeStats(RANKER, client, names=ROUTER)
            targets = Targets((router.rest_url + "/metrics",), {"version": str(CANARY)})
            assert await stats.scrape([targets], start) == {}
            answers = await rest_predicts(router, 1000)
            window = Window(start, datetime.now(UTC) + timedelta(seconds=1), CANARY, STABLE, False)
            return answers, await stats.measure(window, targets, None)

    answers, observation = asyncio.run(run())
    assert all(header == computed for header, computed in answers)
    by_version = Counter(header for header, _ in answers)
    assert abs(100 * by_version[CANARY] / 1000 - weight) <= 2, by_version
    assert serving_requests(model_server) - before_server == 1000
    for version in (STABLE, CANARY):
        counted = router.metric("croupier_router_requests_total", version=str(version), code="OK") - before[version]
        assert counted == by_version[version]
    # The canary engine's RuntimeStats source reads the router's per-version counters (VersionLabels mode).
    assert isinstance(observation, Measurement), observation
    assert observation.canary.requests == by_version[CANARY] and observation.canary.error_rate == 0
    assert (observation.canary.p99_latency_milliseconds or 0) > 0


def test_grpc_split_through_the_stock_stubs(router: RouterProcess) -> None:
    router.write_table(40)
    router.wait_for_weight(40)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = RANKER
    request.inputs["context"].CopyFrom(_tensor(CONTEXT))
    request.inputs["arms"].CopyFrom(_tensor(ARMS))
    counts: Counter[int] = Counter()
    with grpc.insecure_channel(router.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _ in range(1000):
            response, call = stub.Predict.with_call(request, timeout=10)
            trailing = dict(call.trailing_metadata())
            version = int(trailing["x-croupier-model-version"])
            assert response.model_spec.version.value == version  # the model server says which version answered
            assert served_by_scores(_array(response.outputs["scores"])[0]) == version
            assert trailing["x-croupier-model-label"] == ("canary" if version == CANARY else "stable")
            counts[version] += 1
    assert abs(100 * counts[CANARY] / 1000 - 40) <= 2, counts


def _array(tensor: Any) -> Any:
    import tensorflow as tf  # noqa: PLC0415

    return tf.make_ndarray(tensor)


def _tensor(value: Any) -> Any:
    import tensorflow as tf  # noqa: PLC0415 - the test client builds TensorProtos as TF Serving's clients do

    return tf.make_tensor_proto(np.asarray(value, dtype=np.float32))


def test_units_stick_to_a_version_across_rest_and_grpc(router: RouterProcess) -> None:
    router.write_table(50)
    router.wait_for_weight(50)
    units = [f"player-{i}" for i in range(200)]
    answers = asyncio.run(rest_predicts(router, 600, units))
    seen: dict[str, set[int]] = {}
    for i, (version, _) in enumerate(answers):
        seen.setdefault(units[i % len(units)], set()).add(version)
    assert all(len(versions) == 1 for versions in seen.values())
    share = sum(1 for versions in seen.values() if CANARY in versions) / len(units)
    assert 0.4 <= share <= 0.6, share
    request = predict_pb2.PredictRequest()
    request.model_spec.name = RANKER
    request.inputs["context"].CopyFrom(_tensor(CONTEXT))
    request.inputs["arms"].CopyFrom(_tensor(ARMS))
    with grpc.insecure_channel(router.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for unit in units[:50]:
            _, call = stub.Predict.with_call(request, timeout=10, metadata=[("x-croupier-unit", unit)])
            assert {int(dict(call.trailing_metadata())["x-croupier-model-version"])} == seen[unit]
    # A larger weight only moves units from stable to canary.
    router.write_table(80)
    router.wait_for_weight(80)
    later = asyncio.run(rest_predicts(router, 200, units))
    for i, (version, _) in enumerate(later):
        if CANARY in seen[units[i]]:
            assert version == CANARY


def test_a_weight_change_is_honoured_within_five_seconds(router: RouterProcess) -> None:
    router.write_table(0)
    router.wait_for_weight(0)
    with httpx.Client(base_url=router.rest_url, timeout=10) as client:
        assert client.post(PREDICT, json=BODY).headers["x-croupier-model-version"] == str(STABLE)
        changed = time.monotonic()
        router.write_table(100)
        while client.post(PREDICT, json=BODY).headers["x-croupier-model-version"] != str(CANARY):
            assert time.monotonic() - changed < 5, "the new weight did not reach the router within 5 s"
            time.sleep(0.05)
        assert all(client.post(PREDICT, json=BODY).headers["x-croupier-model-version"] == "2" for _ in range(20))


def test_explicit_versions_and_labels_pass_through(router: RouterProcess) -> None:
    router.write_table(100)
    router.wait_for_weight(100)
    before = router.metric("croupier_router_requests_total", version="1", label="none", code="OK")
    with httpx.Client(base_url=router.rest_url, timeout=10) as client:
        for _ in range(5):
            answer = client.post(f"/v1/models/{RANKER}/versions/1:predict", json=BODY)
            assert answer.status_code == 200 and answer.headers["x-croupier-model-version"] == "1"
            assert served_by_scores(answer.json()["predictions"][0]) == STABLE
            answer = client.post(f"/v1/models/{RANKER}/labels/stable:predict", json=BODY)
            assert answer.headers["x-croupier-model-label"] == "stable"
            assert served_by_scores(answer.json()["predictions"][0]) == STABLE
        status = client.get(f"/v1/models/{RANKER}")
        assert status.status_code == 200 and {v["version"] for v in status.json()["model_version_status"]} == {"1", "2"}
        assert client.get(f"/v1/models/{RANKER}/metadata").status_code == 200
    assert router.metric("croupier_router_requests_total", version="1", label="none", code="OK") - before == 5
    request = predict_pb2.PredictRequest()
    request.model_spec.name = RANKER
    request.model_spec.version.value = STABLE
    request.inputs["context"].CopyFrom(_tensor(CONTEXT))
    request.inputs["arms"].CopyFrom(_tensor(ARMS))
    with grpc.insecure_channel(router.grpc_target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
    assert response.model_spec.version.value == STABLE


def test_a_pin_header_sends_a_request_to_that_version(router: RouterProcess) -> None:
    """What an Experiment's ModelDeployment target hands its clients: ``x-croupier-model-version``, honoured on REST and
    gRPC for requests naming no version or label, whatever the weight; a bad value is refused with the header named."""
    router.write_table(100)
    router.wait_for_weight(100)
    before = router.metric("croupier_router_requests_total", version="1", label="none", code="OK")
    with httpx.Client(base_url=router.rest_url, timeout=10) as client:
        for _ in range(5):
            answer = client.post(PREDICT, json=BODY, headers={"x-croupier-model-version": "1"})
            assert answer.status_code == 200 and answer.headers["x-croupier-model-version"] == "1"
            assert served_by_scores(answer.json()["predictions"][0]) == STABLE
        bad = client.post(PREDICT, json=BODY, headers={"x-croupier-model-version": "latest"})
        assert bad.status_code == 400 and "x-croupier-model-version" in bad.json()["error"]
        # A path that names a version wins over the header.
        pin = {"x-croupier-model-version": "1"}
        named = client.post(f"/v1/models/{RANKER}/versions/2:predict", json=BODY, headers=pin)
        assert named.headers["x-croupier-model-version"] == "2"
    assert router.metric("croupier_router_requests_total", version="1", label="none", code="OK") - before == 5
    request = predict_pb2.PredictRequest()
    request.model_spec.name = RANKER
    request.inputs["context"].CopyFrom(_tensor(CONTEXT))
    request.inputs["arms"].CopyFrom(_tensor(ARMS))
    with grpc.insecure_channel(router.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=10, metadata=(("x-croupier-model-version", "1"),))
        assert response.model_spec.version.value == STABLE
        with pytest.raises(grpc.RpcError) as refused:
            stub.Predict(request, timeout=10, metadata=(("x-croupier-model-version", "x"),))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", PREDICT, b"{not json"),
        ("POST", PREDICT, b'{"instances": [{"context": [1, 2]}]}'),
        ("POST", "/v1/models/nosuchmodel:predict", b'{"instances": [1]}'),
        ("POST", f"/v1/models/{RANKER}/versions/9:predict", b'{"instances": [1]}'),
        ("POST", f"/v1/models/{RANKER}/labels/nosuchlabel:predict", b'{"instances": [1]}'),
        ("GET", "/v1/models/nosuchmodel", b""),
        ("GET", "/v2/anything", b""),
        ("DELETE", PREDICT, b""),
    ],
)
def test_bad_input_gets_the_model_servers_answer(
    router: RouterProcess, model_server: ModelServerProcess, method: str, path: str, body: bytes
) -> None:
    router.write_table(0)
    router.wait_for_weight(0)
    # At weight 0 the router sends a POST that names no version to the label stable; everything else goes unchanged.
    direct_path = path.replace(PREDICT, f"/v1/models/{RANKER}/labels/stable:predict") if method == "POST" else path
    routed = httpx.request(method, router.rest_url + path, content=body, timeout=10)
    direct = httpx.request(method, model_server.rest_url + direct_path, content=body, timeout=10)
    assert 400 <= routed.status_code < 500
    assert (routed.status_code, routed.json()) == (direct.status_code, direct.json())
    assert set(routed.json()) == {"error"}


def test_an_unreachable_model_server_is_unavailable(tmp_path: Path, implementation: str) -> None:
    dead = RouterProcess(
        tmp_path / "routing.json",
        f"http://127.0.0.1:{free_port()}",
        f"127.0.0.1:{free_port()}",
        tmp_path / "router.log",
        implementation,
    )
    dead.write_table(50)
    dead.start()
    try:
        answer = httpx.post(dead.rest_url + PREDICT, json=BODY, timeout=10)
        assert answer.status_code == 503 and "is unreachable" in answer.json()["error"]
        assert dead.metric("croupier_router_requests_total", code="UNAVAILABLE") == 1
        request = predict_pb2.PredictRequest()
        request.model_spec.name = RANKER
        with grpc.insecure_channel(dead.grpc_target) as channel, pytest.raises(grpc.RpcError) as raised:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE and "is unreachable" in (raised.value.details() or "")
    finally:
        dead.stop()


_SEGMENT = st.text(alphabet=st.sampled_from("abcr:/.%09_-"), max_size=12)
_PATHS = st.one_of(
    st.builds(lambda name: f"/v1/models/{name}:predict", st.sampled_from([RANKER, "other", ""]) | _SEGMENT),
    st.builds(
        lambda name, kind, ref, verb: f"/v1/models/{name}/{kind}/{ref}:{verb}",
        st.sampled_from([RANKER, "x"]),
        st.sampled_from(["versions", "labels", "v"]),
        st.sampled_from(["1", "2", "stable", "canary", "99999999999999999999", "-1"]) | _SEGMENT,
        st.sampled_from(["predict", "classify", "regress", "PREDICT", "explain"]),
    ),
    st.builds(lambda tail: f"/v1/models/{RANKER}{tail}", _SEGMENT),
    st.builds(lambda tail: f"/{tail}", _SEGMENT),
)
_KEYS = st.sampled_from(["instances", "inputs", "signature_name", "context", "arms", "examples"])
_BODIES = st.one_of(
    st.just(json.dumps(BODY).encode()),
    st.binary(max_size=64),
    st.builds(
        lambda doc: json.dumps(doc).encode(),
        st.recursive(
            st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=5),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
            max_leaves=8,
        ),
    ),
)


def test_rest_fuzz_answers_as_the_model_server_does(router: RouterProcess, model_server: ModelServerProcess) -> None:
    """Any method, path and body: the router's status, and for errors its body, equal the model server's for the
    request the router sent on (the same request, or the path with the label it chose): no error of its own making."""
    router.write_table(0)
    router.wait_for_weight(0)

    with httpx.Client(timeout=30) as client:

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(method=st.sampled_from(["POST", "GET", "PUT", "DELETE"]), path=_PATHS, body=_BODIES)
        def check(method: str, path: str, body: bytes) -> None:
            routed = client.request(method, router.rest_url + path, content=body)
            sent = path
            if routed.headers.get("x-croupier-model-label") == "stable" and "/labels/" not in path:
                sent = re.sub(r"^(/v1/models/[^/:]+):", r"\1/labels/stable:", path)
            direct = client.request(method, model_server.rest_url + sent, content=body)
            assert routed.status_code == direct.status_code, (method, path, routed.text, direct.text)
            if routed.status_code >= 400:  # TF Serving's error, byte for byte: none of the router's making
                assert routed.content == direct.content, (method, path)

        check()


def test_the_callers_metadata_reaches_the_model_server(tmp_path: Path, implementation: str) -> None:
    """A model server behind an authenticating proxy needs the caller's `authorization`, and tracing needs its headers:
    the router passes the caller's metadata on and keeps gRPC's transport headers its own. The upstream here is a
    gRPC server that records what it receives (the local model server ignores metadata, so it cannot show it)."""
    seen: list[tuple[tuple[str, str | bytes], ...]] = []

    def predict(request: bytes, context: grpc.ServicerContext) -> bytes:
        seen.append(tuple(context.invocation_metadata()))
        return b""  # an empty PredictResponse

    upstream, port = _predict_upstream(predict, workers=2)
    router = RouterProcess(
        tmp_path / "routing.json",
        f"http://127.0.0.1:{free_port()}",
        f"127.0.0.1:{port}",
        tmp_path / "router.log",
        implementation,
    )
    router.write_table(0)
    router.start()
    try:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = RANKER
        metadata = (("authorization", "Bearer t0ken"), ("x-request-id", "r-1"), ("trace-bin", b"\x00\x01"))
        with grpc.insecure_channel(router.grpc_target) as channel:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10, metadata=metadata)
        received = dict(seen[0])
        assert received["authorization"] == "Bearer t0ken" and received["x-request-id"] == "r-1"
        assert received["trace-bin"] == b"\x00\x01"
        assert not any(key.startswith((":", "grpc-")) for key in received)
    finally:
        router.stop()
        upstream.stop(None)


def _predict_upstream(predict: Callable[[bytes, grpc.ServicerContext], bytes], workers: int) -> tuple[grpc.Server, int]:
    """A started gRPC server on a free loopback port whose PredictionService.Predict is ``predict`` (bytes in and out):
    an upstream that records what the router sends it."""
    upstream = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    upstream.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "tensorflow.serving.PredictionService", {"Predict": grpc.unary_unary_rpc_method_handler(predict)}
            )
        ]
    )
    port = upstream.add_insecure_port("127.0.0.1:0")
    upstream.start()
    return upstream, port


def test_the_deadline_is_passed_on_and_capped_and_other_methods_are_unimplemented(
    tmp_path: Path, implementation: str
) -> None:
    """The model server sees the caller's deadline, or the router's upstream timeout when that is shorter; a method
    the router does not pass (MultiInference) is UNIMPLEMENTED, as grpc answers a method nobody serves."""
    remaining: list[float | None] = []

    def predict(request: bytes, context: grpc.ServicerContext) -> bytes:
        remaining.append(context.time_remaining())
        time.sleep(1.5)
        return b""

    upstream, port = _predict_upstream(predict, workers=4)
    router = RouterProcess(
        tmp_path / "routing.json",
        f"http://127.0.0.1:{free_port()}",
        f"127.0.0.1:{port}",
        tmp_path / "router.log",
        implementation,
        environment={"CROUPIER_ROUTER_UPSTREAM_TIMEOUT_SECONDS": "0.8"},
    )
    router.write_table(0)
    router.start()
    try:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = RANKER
        with grpc.insecure_channel(router.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            counted = 0.0
            for timeout, bound in ((0.5, 0.5), (10.0, 0.8)):
                counted = router.metric("croupier_router_requests_total", code="DEADLINE_EXCEEDED")
                with pytest.raises(grpc.RpcError) as raised:
                    stub.Predict(request, timeout=timeout)
                assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                seen = remaining[-1]
                # The grpc-timeout header carries whole units, and the receiver's clock rounds: allow 10 ms over.
                assert seen is not None and 0 < seen <= bound + 0.01, (timeout, seen)
            other = channel.unary_unary("/tensorflow.serving.PredictionService/MultiInference")
            with pytest.raises(grpc.RpcError) as raised:
                other(b"", timeout=10)
            assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # The call the router's own timeout ended is counted. (One whose caller's deadline passed is not when the
        # handler is cancelled first, which is a race at the deadline in both routers: not asserted.)
        assert router.metric("croupier_router_requests_total", code="DEADLINE_EXCEEDED") - counted == 1
    finally:
        router.stop()
        upstream.stop(None)
