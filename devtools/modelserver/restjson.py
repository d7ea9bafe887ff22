"""TF Serving's REST JSON tensor formats (tensorflow_serving/util/json_tensor.cc): request bodies to named arrays and
named arrays to ``predictions`` (row format) or ``outputs`` (columnar format)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from tensorflow.core.example import example_pb2

from croupier.modelserver.errors import invalid_argument

INSTANCES = "instances"
INPUTS = "inputs"
SIGNATURE = "signature_name"


def _debug(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))[:256]


def parse_body(body: bytes) -> dict[str, Any]:
    """The request object, or TF Serving's parse errors."""
    if not body.strip():
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        position = getattr(error, "pos", getattr(error, "start", 0))
        raise invalid_argument(
            f"JSON Parse error: {getattr(error, 'msg', str(error))} at offset: {position}"
        ) from error
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {_debug(document)} Is not object")
    return document


def signature_name(document: dict[str, Any]) -> str:
    value = document.get(SIGNATURE, "")
    if not isinstance(value, str):
        raise invalid_argument(
            f"JSON Value: {_debug(document)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return value


def _decode_b64(value: Any) -> Any:
    """``{"b64": "..."}`` objects become bytes (for DT_STRING inputs), recursively."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, TypeError) as error:
            raise invalid_argument(f"JSON Value: {_debug(value)} not formatted correctly for base64 data") from error
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    return value


def request_inputs(document: dict[str, Any], input_names: list[str]) -> tuple[dict[str, Any], bool]:
    """Named input values from ``instances`` (row format; returns row=True) or ``inputs`` (columnar)."""
    has_instances, has_inputs = INSTANCES in document, INPUTS in document
    if has_instances and has_inputs:
        raise invalid_argument(
            f"JSON Value: {_debug(document)} Not formatted correctly expecting only one of 'inputs' or 'instances' "
            "keys to exist "
        )
    if has_instances:
        instances = document[INSTANCES]
        if not isinstance(instances, list):
            raise invalid_argument(f"JSON Value: {_debug(document)} Expecting 'instances' to be an list/array")
        if not instances:
            raise invalid_argument(f"JSON Value: {_debug(document)} No values in 'instances' array")
        return _rows(instances, input_names), True
    if has_inputs:
        return _columns(document[INPUTS], input_names), False
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _rows(instances: list[Any], names: list[str]) -> dict[str, Any]:
    named = all(isinstance(i, dict) and set(i) != {"b64"} for i in instances)
    if len(names) == 1 and not named:
        return {names[0]: _decode_b64(instances)}
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise invalid_argument(f"Expecting object but got list at item {index} of input list")
        for name in names:
            if name not in instance:
                raise invalid_argument(f"Missing named input: {name} in 'instances' list item {index}")
            columns[name].append(_decode_b64(instance[name]))
        extra = sorted(set(instance) - set(names))
        if extra:
            raise invalid_argument(f"JSON object: does not have named input: {extra[0]}")
    return columns


def _columns(inputs: Any, names: list[str]) -> dict[str, Any]:
    if isinstance(inputs, dict) and set(inputs) != {"b64"}:
        for name in names:
            if name not in inputs:
                raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        extra = sorted(set(inputs) - set(names))
        if extra:
            raise invalid_argument(f"JSON object: does not have named input: {extra[0]}")
        return {name: _decode_b64(inputs[name]) for name in names}
    if len(names) != 1:
        raise invalid_argument(f"Expecting 'inputs' to be an object with keys {{{','.join(names)}}}")
    return {names[0]: _decode_b64(inputs)}


def _jsonable(array: np.ndarray[Any, Any]) -> Any:
    if array.dtype.kind in ("S", "O"):

        def text(value: Any) -> Any:
            if isinstance(value, bytes):
                try:
                    return value.decode("utf-8")
                except UnicodeDecodeError:
                    return {"b64": base64.b64encode(value).decode("ascii")}
            return value

        return np.vectorize(text, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def response_body(outputs: dict[str, np.ndarray[Any, Any]], row: bool) -> dict[str, Any]:
    """``{"predictions": ...}`` (row) or ``{"outputs": ...}`` (columnar); a single output is not wrapped by name."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    if not row:
        if len(outputs) == 1:
            return {"outputs": _jsonable(next(iter(outputs.values())))}
        return {"outputs": {name: _jsonable(value) for name, value in outputs.items()}}
    sizes = {name: (value.shape[0] if value.ndim else None) for name, value in outputs.items()}
    if None in sizes.values() or len(set(sizes.values())) > 1:
        raise invalid_argument(
            "Tensors in the output map have different or undefined 0th dimension sizes; use the columnar 'inputs' "
            f"format: {sizes}"
        )
    if len(outputs) == 1:
        return {"predictions": _jsonable(next(iter(outputs.values())))}
    columns = {name: _jsonable(value) for name, value in outputs.items()}
    count = next(iter(sizes.values())) or 0
    return {"predictions": [{name: columns[name][i] for name in columns} for i in range(count)]}


CONTEXT = "context"
EXAMPLES = "examples"


def _feature(name: str, content: Any, feature: Any) -> None:
    """Add one JSON value (or a list of them) to a tf.train.Feature, TF Serving's typing rules (json_tensor.cc)."""
    for value in content if isinstance(content, list) else [content]:
        add: Any
        if isinstance(value, bool):
            kind, add = "int64_list", int(value)
        elif isinstance(value, int):
            if value >= 2**63:
                raise invalid_argument(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
            kind, add = "int64_list", value
        elif isinstance(value, float):
            kind, add = "float_list", value
        elif isinstance(value, str):
            kind, add = "bytes_list", value.encode("utf-8")
        elif isinstance(value, dict) and set(value) == {"b64"}:
            kind, add = "bytes_list", _decode_b64(value)
        else:
            raise invalid_argument(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")
        current = feature.WhichOneof("kind")
        if current not in (None, kind):
            expected = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}[current]
            raise invalid_argument(f"Unexpected element type in feature: {name} expecting type: {expected}")
        getattr(feature, kind).value.append(add)


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    return {dict: "Object", list: "Array", str: "String", bool: "Bool"}.get(type(value), "Number")


def _example(value: Any) -> Any:
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {_json_type(value)}")
    example = example_pb2.Example()
    for name, content in value.items():
        _feature(name, content, example.features.feature[name])
    return example


def request_examples(document: dict[str, Any], method: str) -> list[bytes]:
    """``{"context"?: {...}, "examples": [{...}]}`` as serialized tf.Examples (the context merged into each)."""
    context = _example(document[CONTEXT]).SerializeToString() if CONTEXT in document else b""
    if EXAMPLES not in document:
        raise invalid_argument(
            f"JSON Value: {_debug(document)} When method is {method}, key 'examples' is expected and was not found"
        )
    examples = document[EXAMPLES]
    if not isinstance(examples, list):
        raise invalid_argument(f"JSON Value: {_debug(document)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise invalid_argument(f"JSON Value: {_debug(document)} 'examples' value is an empty array")
    return [context + _example(e).SerializeToString() for e in examples]
