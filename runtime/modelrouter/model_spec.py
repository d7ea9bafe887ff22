"""A mirror of the one part of TF Serving's requests the router reads and writes: ``model_spec`` (field 1 of
PredictRequest, ClassificationRequest and RegressionRequest), with TF Serving's ModelSpec field numbers
(tensorflow_serving/apis/model.proto). Every other field of a request stays an unknown field and is written back
byte for byte, so the router needs neither TensorFlow's protos nor a copy of them.

The descriptor is built here with protobuf's own descriptor API (no generated module to keep in step); its package is
Croupier's, so it never collides with ``tensorflow.serving`` in the descriptor pool."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

_FILE = "croupier/modelrouter/model_spec.proto"
_PACKAGE = "croupier.modelrouter.v1"
_F = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name=_FILE, package=_PACKAGE, syntax="proto3", dependency=[wrappers_pb2.DESCRIPTOR.name]
    )
    spec = proto.message_type.add(name="ModelSpec")
    spec.oneof_decl.add(name="version_choice")
    spec.field.add(name="name", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    spec.field.add(
        name="version",
        number=2,
        type=_F.TYPE_MESSAGE,
        type_name=".google.protobuf.Int64Value",
        label=_F.LABEL_OPTIONAL,
        oneof_index=0,
    )
    spec.field.add(name="version_label", number=4, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL, oneof_index=0)
    spec.field.add(name="signature_name", number=3, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    head = proto.message_type.add(name="RequestHead")
    head.field.add(
        name="model_spec",
        number=1,
        type=_F.TYPE_MESSAGE,
        type_name=f".{_PACKAGE}.ModelSpec",
        label=_F.LABEL_OPTIONAL,
    )
    return proto


def _request_head_class() -> Any:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_FILE)
    except KeyError:
        pool.Add(_file())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.RequestHead"))


RequestHead: Any = _request_head_class()
"""``RequestHead.FromString(request_bytes)``: ``.model_spec`` read and written; everything else kept as is."""
