"""Croupier's mirror of TF Serving's Predict messages (runtime/scoring/prediction_service.proto) is what `make protos`
generates now, and every field it has carries TensorFlow's own field number and wire type."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from croupier.runtime.scoring import prediction_service_pb2 as pb

RUNTIME = Path(__file__).resolve().parents[3] / "runtime"


def test_checked_in_code_is_what_make_protos_generates(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "grpc_tools.protoc", "-I.", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}"]
    subprocess.run([*argv, "scoring/prediction_service.proto"], cwd=RUNTIME, check=True, timeout=120)
    for name in ("prediction_service_pb2.py", "prediction_service_pb2.pyi"):
        fresh = (tmp_path / "scoring" / name).read_text()
        assert fresh == (RUNTIME / "scoring" / name).read_text(), f"runtime/scoring/{name} is stale: make protos"


def test_fields_match_tensorflow_serving() -> None:
    tensor_pb2 = pytest.importorskip("tensorflow.core.framework.tensor_pb2")
    shape_pb2 = pytest.importorskip("tensorflow.core.framework.tensor_shape_pb2")
    types_pb2 = pytest.importorskip("tensorflow.core.framework.types_pb2")
    meta_graph_pb2 = pytest.importorskip("tensorflow.core.protobuf.meta_graph_pb2")
    apis = pytest.importorskip("tensorflow_serving.apis")
    from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2, predict_pb2  # noqa: PLC0415

    assert apis is not None
    pairs = [
        (pb.ModelSpec, model_pb2.ModelSpec),
        (pb.TensorShapeProto, shape_pb2.TensorShapeProto),
        (pb.TensorShapeProto.Dim, shape_pb2.TensorShapeProto.Dim),
        (pb.TensorProto, tensor_pb2.TensorProto),
        (pb.PredictRequest, predict_pb2.PredictRequest),
        (pb.PredictResponse, predict_pb2.PredictResponse),
        (pb.TensorInfo, meta_graph_pb2.TensorInfo),
        (pb.SignatureDef, meta_graph_pb2.SignatureDef),
        (pb.SignatureDefMap, get_model_metadata_pb2.SignatureDefMap),
        (pb.GetModelMetadataRequest, get_model_metadata_pb2.GetModelMetadataRequest),
        (pb.GetModelMetadataResponse, get_model_metadata_pb2.GetModelMetadataResponse),
    ]
    for ours, theirs in pairs:
        fields = theirs.DESCRIPTOR.fields_by_name
        for field in ours.DESCRIPTOR.fields:
            assert field.name in fields, f"{theirs.DESCRIPTOR.full_name} has no field {field.name}"
            assert (field.number, field.type) == (fields[field.name].number, fields[field.name].type), field.full_name
    for name, value in pb.DataType.items():
        assert types_pb2.DataType.Value(name) == value
