"""Version lifecycle, labels and reloads: HandleReloadConfigRequest, the config-file poll and the version-folder poll.

The server holds each version in LOADING for --dev_load_delay_ms so the state is observable."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from support.savedmodels import Repository, model_config
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from croupier.modelserver import savedmodels
from croupier.modelserver.process import ModelServerProcess

State = get_model_status_pb2.ModelVersionStatus
MODEL = "life"
LOAD_DELAY_MS = 1500
RETRY_INTERVAL_MS = 1500


@pytest.fixture(scope="module")
def life(repository: Repository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModelServerProcess, Path]]:
    work = tmp_path_factory.mktemp("life")
    base = work / MODEL
    for version in (1, 2):
        shutil.copytree(repository.base_path / str(version), base / str(version))
    savedmodels.write_broken(base, 6)
    config = work / "models.config"
    config.write_text(model_config([(MODEL, base, [1], {"stable": 1})]))
    server = ModelServerProcess(
        [
            f"--model_config_file={config}",
            "--model_config_file_poll_wait_seconds=1",
            "--file_system_poll_wait_seconds=1",
            f"--dev_load_delay_ms={LOAD_DELAY_MS}",
            "--max_num_load_retries=1",
            f"--load_retry_interval_micros={RETRY_INTERVAL_MS * 1000}",
        ],
        work / "server.log",
    )
    with server.start(ready_model=MODEL):
        yield server, base


@pytest.fixture(scope="module")
def stubs(
    life: tuple[ModelServerProcess, Path],
) -> Iterator[tuple[model_service_pb2_grpc.ModelServiceStub, prediction_service_pb2_grpc.PredictionServiceStub]]:
    with grpc.insecure_channel(life[0].grpc_target) as channel:
        yield (
            model_service_pb2_grpc.ModelServiceStub(channel),
            prediction_service_pb2_grpc.PredictionServiceStub(channel),
        )


def states(models: model_service_pb2_grpc.ModelServiceStub, name: str = MODEL) -> dict[int, int]:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    return {s.version: s.state for s in models.GetModelStatus(request, timeout=10).model_version_status}


def watch(
    models: model_service_pb2_grpc.ModelServiceStub, version: int, until: int, timeout: float = 60, name: str = MODEL
) -> list[int]:
    """Every state a version was seen in, polling until it reaches ``until``."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = states(models, name).get(version, State.UNKNOWN)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == until:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"version {version} of {name} never reached {until}: {seen}")


def reload(models: model_service_pb2_grpc.ModelServiceStub, text: str) -> model_management_pb2.ReloadConfigResponse:
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(text, request.config)
    return models.HandleReloadConfigRequest(request, timeout=60)


def predict_version(prediction: prediction_service_pb2_grpc.PredictionServiceStub, label: str) -> int:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.version_label = label
    request.inputs["context"].CopyFrom(tf.make_tensor_proto(np.ones((1, 4), np.float32)))
    request.inputs["arms"].CopyFrom(tf.make_tensor_proto(np.ones((1, 2, 4), np.float32)))
    return int(prediction.Predict(request, timeout=30).model_spec.version.value)


def test_reload_loads_a_new_version_off_the_request_path(life, stubs) -> None:  # type: ignore[no-untyped-def]
    models, _ = stubs
    _, base = life
    response = reload(models, model_config([(MODEL, base, [1, 2], {"stable": 1})]))
    assert response.status.error_code == 0
    seen = watch(models, 2, State.AVAILABLE)
    assert State.LOADING in seen and seen[-1] == State.AVAILABLE


def test_labels_only_point_at_available_versions(life, stubs) -> None:  # type: ignore[no-untyped-def]
    models, prediction = stubs
    _, base = life
    watch(models, 2, State.AVAILABLE)
    with pytest.raises(grpc.RpcError) as refused:
        reload(models, model_config([(MODEL, base, [1, 2], {"stable": 1, "canary": 3})]))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.details() == (
        f"Request to assign label to version 3 of model {MODEL}, which is not currently available for inference"
    )
    with pytest.raises(grpc.RpcError):
        predict_version(prediction, "canary")  # the failed reload installed no label
    reload(models, model_config([(MODEL, base, [1, 2], {"stable": 1, "canary": 2})]))
    assert predict_version(prediction, "stable") == 1
    assert predict_version(prediction, "canary") == 2


def test_a_version_that_fails_to_load_reports_its_error(life, stubs) -> None:  # type: ignore[no-untyped-def]
    models, _ = stubs
    _, base = life
    start = time.monotonic()
    reload(models, model_config([(MODEL, base, [1, 2, 6], {"stable": 1, "canary": 2})]))
    seen = watch(models, 6, State.END)
    assert State.LOADING in seen
    # One retry (--max_num_load_retries=1) after --load_retry_interval_micros, LOADING all along, then END.
    assert time.monotonic() - start >= (LOAD_DELAY_MS + RETRY_INTERVAL_MS) / 1000
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    request.model_spec.version.value = 6
    (status,) = models.GetModelStatus(request, timeout=10).model_version_status
    assert status.state == State.END
    assert status.status.error_code != 0
    assert "saved_model.pb" in status.status.error_message
    time.sleep(2.5)  # two version-folder polls: a version that failed stays failed while it is aspired
    assert states(models)[6] == State.END


def test_a_reload_replaces_the_whole_config(life, stubs, repository: Repository) -> None:  # type: ignore[no-untyped-def]
    models, prediction = stubs
    _, base = life
    other = base.parent / "other"
    shutil.copytree(repository.base_path / "1", other / "1", dirs_exist_ok=True)
    # A new model: the reload waits until it is AVAILABLE (as TF Serving does).
    reload(models, model_config([(MODEL, base, [1, 2], {"stable": 1}), ("other", other, [1], {})]))
    assert states(models, "other") == {1: State.AVAILABLE}
    # Omitted: version 1 of MODEL and the model "other" unload; END stays visible in the status.
    reload(models, model_config([(MODEL, base, [2], {"stable": 2})]))
    assert watch(models, 1, State.END)[-1] == State.END
    assert watch(models, 1, State.END, name="other")[-1] == State.END
    assert predict_version(prediction, "stable") == 2


def test_a_new_model_without_versions_fails_the_reload(life, stubs) -> None:  # type: ignore[no-untyped-def]
    models, prediction = stubs
    _, base = life
    empty = base.parent / "empty"
    empty.mkdir()
    with pytest.raises(grpc.RpcError) as failed:
        reload(models, model_config([(MODEL, base, [2], {"stable": 2}), ("empty", empty, [1], {})]))
    assert failed.value.code() == grpc.StatusCode.UNKNOWN
    assert failed.value.details() == (
        f"1 model(s) did not become available: {{{{name: empty: no version folder its version policy selects under "
        f"{empty}}}, }}"
    )
    reload(models, model_config([(MODEL, base, [2], {"stable": 2})]))
    assert predict_version(prediction, "stable") == 2


def test_config_file_poll_and_version_folder_poll(life, stubs, repository: Repository) -> None:  # type: ignore[no-untyped-def]
    models, _ = stubs
    server, base = life
    config = base.parent / "models.config"
    config.write_text(model_config([(MODEL, base, [2, 7], {"stable": 2})]))
    time.sleep(2.5)  # the file poll (1 s) applies it; version 7 has no folder yet, so it is not aspired
    assert 7 not in states(models)
    shutil.copytree(repository.base_path / "1", base / "7")
    seen = watch(models, 7, State.AVAILABLE)
    assert State.LOADING in seen
    assert server.process is not None and server.process.poll() is None


def test_startup_fails_when_a_model_does_not_load(tmp_path: Path) -> None:
    base = tmp_path / "broken"
    savedmodels.write_broken(base, 1)
    command = [
        sys.executable,
        "-m",
        "croupier.modelserver",
        "--port=1",
        "--max_num_load_retries=0",
        "--model_name=broken",
        f"--model_base_path={base}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "1 model(s) did not become available: {{name: broken version: 1 due to error:" in done.stderr


def test_a_bad_command_line_exits_2_with_a_clear_message() -> None:
    # Every flag rule is covered in-process by tests/unit/modelserver/test_flags.py; this checks the process's answer.
    command = [sys.executable, "-m", "croupier.modelserver", "--model_base_path=/m", "--bogus=1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().endswith("croupier-modelserver: unrecognized arguments: --bogus=1")
