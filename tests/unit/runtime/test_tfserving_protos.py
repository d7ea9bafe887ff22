"""The TF Serving protobuf modules speak TF Serving's wire format: the field numbers of TF Serving's own messages
(checked on hand-encoded bytes, so no TensorFlow is needed). That they are what `make protos` generates is checked in
tests/integration/runtime/test_tfserving_protos_current.py (protoc runs as a process there)."""

from __future__ import annotations

import pytest

from croupier.runtime.tfserving import model_service_pb2 as pb
from croupier.runtime.tfserving.client import GET_MODEL_STATUS, ErrorCode, request, versions_of

pytestmark = pytest.mark.unit


def test_descriptors_live_in_croupiers_package_not_tensorflows() -> None:
    assert pb.DESCRIPTOR.package == "croupier.tfserving.v1"
    assert pb.DESCRIPTOR.name == "tfserving/model_service.proto"
    assert GET_MODEL_STATUS == "/tensorflow.serving.ModelService/GetModelStatus"


def test_request_bytes_match_tf_servings_field_numbers() -> None:
    # GetModelStatusRequest{model_spec(1): ModelSpec{name(1): "ranker", version(2): Int64Value{value(1): 7}}}
    spec = b"\x0a\x06ranker" + b"\x12\x02\x08\x07"
    assert request("ranker", 7).SerializeToString() == b"\x0a" + bytes([len(spec)]) + spec
    assert request("ranker").SerializeToString() == b"\x0a\x08\x0a\x06ranker"


def test_response_bytes_from_tf_serving_decode_to_states_and_errors() -> None:
    # ModelVersionStatus{version(1): 2, state(2): AVAILABLE=30, status(3): {}}
    available = b"\x08\x02\x10\x1e\x1a\x00"
    # ModelVersionStatus{version(1): 3, state(2): END=50, status(3): {error_code(1): NOT_FOUND=5, error_message(2)}}
    message = b"not found"
    status = b"\x08\x05\x12" + bytes([len(message)]) + message
    failed = b"\x08\x03\x10\x32\x1a" + bytes([len(status)]) + status
    wire = b"".join(b"\x0a" + bytes([len(m)]) + m for m in (failed, available))
    versions = versions_of(pb.GetModelStatusResponse.FromString(wire))
    assert [(v.version, str(v.state), v.error_code, v.error_message) for v in versions] == [
        (2, "AVAILABLE", ErrorCode.OK, ""),
        (3, "END", ErrorCode.NOT_FOUND, "not found"),
    ]
    assert versions[1].failed and not versions[0].failed


def test_a_label_request_carries_version_label_field_4() -> None:
    assert request("ranker", label="canary").SerializeToString() == b"\x0a\x10\x0a\x06ranker" + b"\x22\x06canary"
    with pytest.raises(ValueError, match="not both"):
        request("ranker", 1, "canary")


def test_metadata_response_keeps_the_resolved_version_and_skips_the_signature_map() -> None:
    # GetModelMetadataResponse{model_spec(1): {name: "ranker", version: {value: 2}}, metadata(2): {signature_def: ..}}
    spec = b"\x0a\x06ranker\x12\x02\x08\x02"
    entry = b"\x0a\x0dsignature_def\x12\x04\x0a\x02xy"
    wire = b"\x0a" + bytes([len(spec)]) + spec + b"\x12" + bytes([len(entry)]) + entry
    response = pb.GetModelMetadataResponse.FromString(wire)
    assert (response.model_spec.name, response.model_spec.version.value) == ("ranker", 2)
    ask = pb.GetModelMetadataRequest(
        model_spec=pb.ModelSpec(name="r", version_label="stable"), metadata_field=["signature_def"]
    )
    assert ask.SerializeToString() == b"\x0a\x0b\x0a\x01r\x22\x06stable" + b"\x12\x0dsignature_def"
