"""Writes tests/data/router-vectors.json from the Python router (croupier.runtime.modelrouter): unit points, label
sequences, route() answers, routing-table parsing, pin headers and model_spec rewrites. The Go router's tests
(runtime/gorouter, `go test ./...`) and tests/unit/runtime/modelrouter/test_router_vectors.py both check against it, so
the two routers cannot drift apart. Run: `uv run python -m croupier.generators.router_vectors`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from croupier.runtime.modelrouter.model_spec import RequestHead
from croupier.runtime.modelrouter.routing import Router, pinned_version, unit_point
from croupier.runtime.modelrouter.table_file import RoutingTableError, parse_table

OUTPUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "router-vectors.json"

SALTS = ["", "ranker", "salt with spaces", "ünïcode", "0"]
UNITS = ["", "a", "player-1", "player-42", "user@example.com", "ユニット", "x" * 300, "\x00", "0"]
WEIGHTS = [0, 0.5, 5, 12.5, 30, 50, 61.8, 99.9, 100]
TABLES = [
    "",
    "null",
    "{}",
    "salt: s\nmodels:\n  ranker: {stable: 1, canary: 2, canaryWeight: 30}\n",
    '{"salt": "s", "models": {"ranker": {"stable": 1, "canary": 2, "canaryWeight": 12.5}}}',
    '{"models": {"m": {"stable": "1"}}}',
    '{"models": {"m": {"stable": " 7 "}}}',
    '{"models": {"m": {"stable": 1.0}}}',
    '{"models": {"m": {"stable": 1.5}}}',
    '{"models": {"m": {"stable": true}}}',
    '{"models": {"m": {"stable": false}}}',
    '{"models": {"m": {"stable": 0}}}',
    '{"models": {"m": {"stable": -3}}}',
    '{"models": {"m": {"stable": "1_0"}}}',
    '{"models": {"m": {"stable": "0x10"}}}',
    '{"models": {"m": {"stable": "abc"}}}',
    '{"models": {"m": {"stable": [1]}}}',
    '{"models": {"m": {"canary": 2}}}',
    '{"models": {"m": {"stable": 1, "canary": 0}}}',
    '{"models": {"m": {"stable": 1, "canary": null}}}',
    '{"models": {"m": {"stable": 1, "canary": 2, "canaryWeight": "5"}}}',
    '{"models": {"m": {"stable": 1, "canary": 2, "canaryWeight": true}}}',
    '{"models": {"m": {"stable": 1, "canary": 2, "canary_weight": 5}}}',
    '{"models": {"m": {"stable": 1, "canary": 2, "canaryWeight": 100}}}',
    '{"models": {"m": {"stable": 1, "canary": 2, "canaryWeight": 100.5}}}',
    '{"models": {"m": {"stable": 1, "canary": 2, "canaryWeight": -1}}}',
    '{"models": {"m": {"stable": 1, "canaryWeight": 5}}}',
    '{"models": {"m": {"stable": 1, "canaryWeight": 0}}}',
    '{"models": {"m": {"stable": 1, "canary": 2, "canaryWeight": "nan"}}}',
    '{"models": {"m": {"stable": 1, "canary": 2, "canaryWeight": "1e1"}}}',
    "models: {m: {stable: 1, canary: 2, canaryWeight: .inf}}",
    "models: {m: {stable: 1, canary: 2, canaryWeight: .nan}}",
    '{"models": {"m": {"stable": 1, "weight": 3}}}',
    '{"models": {"m": {"stable": 1}}, "extra": 1}',
    '{"salt": 5}',
    '{"salt": null}',
    '{"models": null}',
    '{"models": []}',
    '{"models": {"m": 1}}',
    '{"models": {"1": {"stable": 1}}}',
    "models:\n  1: {stable: 1}\n",
    "[]",
    '"x"',
    "42",
    "{not yaml: [",
    "models: {a: {stable: 1}, b: {stable: 2, canary: 3, canaryWeight: 50}}\nsalt: ''\n",
    "salt: a\nsalt: b\n",
    "salt: yes\n",
    "salt: 'yes'\n",
    "models: {m: {stable: 1, canary: 2, canaryWeight: on}}\n",
    "models: {m: {stable: 0x10}}\n",
    "models: {m: &route {stable: 1}, n: *route}\n",
]
PINS = ["1", " 2 ", "9223372036854775807", "9223372036854775808", "0", "-1", "+1", "latest", "", "1.0", "0x10", "007"]


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


INPUTS = _field(2, _field(1, b"context") + _field(2, b"\x08\x01"))  # an inputs map entry, kept as bytes
FILTER = _field(3, b"scores")
REQUESTS: dict[str, bytes] = {
    "name only": _field(1, _field(1, b"ranker")) + INPUTS + FILTER,
    "other fields first": INPUTS + _field(1, _field(1, b"ranker")) + FILTER,
    "version": _field(1, _field(1, b"ranker") + _field(2, _int_field(1, 5))) + INPUTS,
    "version zero": _field(1, _field(1, b"ranker") + _field(2, b"")) + INPUTS,
    "negative version": _field(1, _field(1, b"ranker") + _field(2, _int_field(1, -2))),
    "label": _field(1, _field(1, b"ranker") + _field(4, b"stable")) + INPUTS,
    "signature and unknown spec field": _field(1, _field(3, b"serve") + _int_field(9, 3) + _field(1, b"ranker")),
    "spec in two parts": _field(1, _field(1, b"ranker")) + INPUTS + _field(1, _field(3, b"sig")),
    "version then label": _field(1, _field(1, b"m") + _field(2, _int_field(1, 3)) + _field(4, b"canary")),
    "label then version": _field(1, _field(1, b"m") + _field(4, b"canary") + _field(2, _int_field(1, 3))),
    "version in two parts": _field(1, _field(2, _int_field(1, 3))) + _field(1, _field(1, b"m") + _field(2, b"")),
    "unknown field inside the version": _field(1, _field(1, b"m") + _field(2, _int_field(1, 4) + _int_field(7, 1))),
    "empty request": b"",
    "empty spec": _field(1, b""),
    "no spec": INPUTS + FILTER,
    "spec field as varint": _int_field(1, 5) + INPUTS,
    "name as varint": _field(1, _int_field(1, 5)),
    "group in spec": _field(1, _field(1, b"m") + _varint(10 << 3 | 3) + _int_field(1, 1) + _varint(10 << 3 | 4)),
    "fixed fields": _field(1, _field(1, b"m")) + _varint(5 << 3 | 1) + b"12345678" + _varint(6 << 3 | 5) + b"1234",
    "truncated varint": _field(1, _field(1, b"m")) + b"\x10\x80",
    "length past the end": _field(1, _field(1, b"m")) + b"\x1a\x10abc",
    "truncated spec": b"\x0a\x05\x0a\x03ab",
    "invalid utf-8 name": _field(1, _field(1, b"\xff\xfe")),
    "invalid utf-8 label": _field(1, _field(1, b"m") + _field(4, b"\xc3")),
    "invalid utf-8 elsewhere": _field(1, _field(1, b"m")) + _field(3, b"\xff"),
    "field number zero": b"\x02\x00",
    "stray end group": _field(1, _field(1, b"m")) + _varint(4 << 3 | 4),
    "unicode name": _field(1, _field(1, "ranker-ü".encode())),
}


def _table(text: str) -> dict[str, Any]:
    try:
        table = parse_table(text, "routing.yaml")
    except RoutingTableError as error:
        return {"text": text, "ok": False, "error": str(error)}
    models = {
        name: {"stable": route.stable, "canary": route.canary, "canaryWeight": route.canary_weight}
        for name, route in table.models.items()
    }
    return {"text": text, "ok": True, "salt": table.salt, "models": models}


def _route(router: Router, call: dict[str, Any]) -> dict[str, Any]:
    route = router.route(call["model"], call.get("version"), call.get("label"), call.get("unit"))
    return {
        **call,
        "route": {"model": route.model, "version": route.version, "label": route.label, "rewrite": route.rewrite},
    }


def _routes() -> list[dict[str, Any]]:
    """Scripts of route() calls on one table; a `replace` entry swaps in a table (the sequences start again)."""
    table = (
        '{"salt": "s1", "models": {"ranker": {"stable": 3, "canary": 4, "canaryWeight": 25}, "solo": {"stable": 9}}}'
    )
    calls: list[dict[str, Any]] = []
    for i in range(12):
        calls.append({"model": "ranker"})
        calls.append({"model": "ranker", "unit": f"u{i}"})
    calls += [
        {"model": "ranker", "unit": ""},
        {"model": "ranker", "version": 3},
        {"model": "ranker", "version": 4},
        {"model": "ranker", "version": 5},
        {"model": "ranker", "version": -1},
        {"model": "ranker", "label": "stable"},
        {"model": "ranker", "label": "canary"},
        {"model": "ranker", "label": "beta"},
        {"model": "solo"},
        {"model": "solo", "label": "canary"},
        {"model": "solo", "version": 9},
        {"model": "nosuch"},
        {"model": "nosuch", "label": "stable"},
        {"model": "nosuch", "label": "x"},
        {"model": "nosuch", "version": 1},
        {"model": ""},
    ]
    router = Router(parse_table(table, "t"))
    out: list[dict[str, Any]] = [{"replace": table}]
    out += [_route(router, call) for call in calls]
    replaced = '{"salt": "s2", "models": {"ranker": {"stable": 3, "canary": 4, "canaryWeight": 70}}}'
    router.replace(parse_table(replaced, "t"))
    out.append({"replace": replaced})
    out += [_route(router, {"model": "ranker"}) for _ in range(10)]
    out += [_route(router, {"model": "ranker", "unit": f"u{i}"}) for i in range(10)]
    return out


def _sequences() -> list[dict[str, Any]]:
    out = []
    for weight in WEIGHTS:
        router = Router(
            parse_table(json.dumps({"models": {"m": {"stable": 1, "canary": 2, "canaryWeight": weight}}}), "t")
        )
        labels = "".join("c" if router.route("m", None, None, None).label == "canary" else "s" for _ in range(200))
        out.append({"weight": weight, "labels": labels})
    return out


def _pins() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for value in PINS:
        try:
            out.append({"value": value, "ok": True, "version": pinned_version(value)})
        except ValueError as error:
            out.append({"value": value, "ok": False, "error": str(error)})
    return out


def _model_specs() -> list[dict[str, Any]]:
    from google.protobuf.message import DecodeError  # noqa: PLC0415

    out: list[dict[str, Any]] = []
    for name, data in REQUESTS.items():
        entry: dict[str, Any] = {"name": name, "request": data.hex()}
        try:
            head = RequestHead.FromString(data)
        except DecodeError:
            out.append({**entry, "malformed": True})
            continue
        spec = head.model_spec
        choice = spec.WhichOneof("version_choice")
        entry |= {
            "malformed": False,
            "model": spec.name,
            "choice": choice or "",
            "version": spec.version.value if choice == "version" else None,
            "label": spec.version_label if choice == "version_label" else None,
        }
        if choice is None:
            labelled = RequestHead.FromString(data)
            labelled.model_spec.version_label = "canary"
            pinned = RequestHead.FromString(data)
            pinned.model_spec.version.value = 7
            entry |= {
                "with_label": labelled.SerializeToString().hex(),
                "with_version": pinned.SerializeToString().hex(),
            }
        out.append(entry)
    return out


def vectors() -> dict[str, Any]:
    return {
        "about": "Written by croupier.generators.router_vectors from the Python router; both routers' tests check it.",
        "unit_points": [{"salt": s, "unit": u, "point": unit_point(s, u)} for s in SALTS for u in UNITS],
        "sequences": _sequences(),
        "routes": _routes(),
        "tables": [_table(text) for text in TABLES],
        "pins": _pins(),
        "model_specs": _model_specs(),
    }


def render() -> str:
    return json.dumps(vectors(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}", file=sys.stderr)
