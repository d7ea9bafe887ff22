"""The routing core: the split follows the weight, units stick, explicit versions pass, metric labels stay bounded."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.modelrouter.errors import HTTP_STATUS, code_of_http_status
from croupier.runtime.modelrouter.routing import (
    PIN_HEADER,
    ModelRoute,
    Route,
    Router,
    RoutingTable,
    pinned_version,
    unit_point,
)
from croupier.runtime.modelrouter.service import RouterService
from croupier.runtime.modelrouter.table_file import RoutingTableError, TableFile, parse_table


def table(weight: float, canary: int | None = 2, salt: str = "s") -> RoutingTable:
    return parse_table(
        f"salt: {salt}\nmodels: {{ranker: {{stable: 1, canaryWeight: {weight}"
        + (f", canary: {canary}" if canary else "")
        + "}}",
        "test",
    )


@pytest.mark.parametrize("weight", [0, 1, 5, 12.5, 30, 50, 99, 100])
def test_requests_without_a_unit_follow_the_weight_closely(weight: float) -> None:
    router = Router(table(weight))
    counts = Counter(router.route("ranker", None, None, None).label for _ in range(1000))
    assert abs(counts["canary"] / 10 - weight) <= 0.5, counts
    assert set(counts) <= {"stable", "canary"}


def test_a_unit_keeps_its_label_and_only_moves_to_the_canary_when_the_weight_grows() -> None:
    units = [f"u{i}" for i in range(2000)]
    at_20 = {u: Router(table(20)).route("ranker", None, None, u).label for u in units}
    router = Router(table(20))
    assert all(router.route("ranker", None, None, u).label == at_20[u] for u in units for _ in range(2))
    assert abs(sum(label == "canary" for label in at_20.values()) / 20 - 20) < 3
    at_50 = {u: Router(table(50)).route("ranker", None, None, u).label for u in units}
    assert all(at_50[u] == "canary" for u in units if at_20[u] == "canary")
    reshuffled = {u: Router(table(20, salt="other")).route("ranker", None, None, u).label for u in units}
    assert reshuffled != at_20


def test_unit_points_are_fixed_and_uniform() -> None:
    assert unit_point("s", "player-1") == unit_point("s", "player-1") != unit_point("t", "player-1")
    points = [unit_point("s", str(i)) for i in range(10_000)]
    assert all(0 <= p < 1 for p in points) and abs(sum(points) / len(points) - 0.5) < 0.01


def test_chosen_routes_name_the_version_behind_the_label() -> None:
    router = Router(table(100))
    assert router.route("ranker", None, None, None) == Route("ranker", "2", "canary", True)
    assert Router(table(0)).route("ranker", None, None, "u") == Route("ranker", "1", "stable", True)
    assert Router(table(0, canary=None)).route("ranker", None, None, None) == Route("ranker", "1", "stable", True)


def test_explicit_versions_and_labels_pass_with_bounded_labels() -> None:
    router = Router(table(50))
    assert router.route("ranker", 1, None, "u") == Route("ranker", "1", "none", False)
    assert router.route("ranker", 7, None, None) == Route("ranker", "other", "none", False)
    assert router.route("ranker", None, "canary", None) == Route("ranker", "2", "canary", False)
    assert router.route("ranker", None, "mine", None) == Route("ranker", "other", "other", False)
    assert router.route("unknown", None, None, None) == Route("other", "other", "none", False)
    assert router.route("unknown", 3, None, None) == Route("other", "other", "none", False)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("models: {ranker: {stable: 1, canaryWeight: 10}}", "no canary version is set"),
        ("models: {ranker: {stable: 1, canary: 2, canaryWeight: 101}}", "models.ranker.canaryWeight"),
        ("models: {ranker: {stable: 0}}", "models.ranker.stable"),
        ("models: {ranker: {stable: 1, weight: 3}}", "models.ranker.weight"),
        ("modles: {}", "modles"),
        ("models: [", "not YAML or JSON"),
        ("models: {ranker: {stable: 1, canary: 2, canaryWeight: .nan}}", "canaryWeight"),
    ],
)
def test_a_bad_routing_file_is_refused_with_the_problem_named(text: str, problem: str) -> None:
    with pytest.raises(RoutingTableError, match=problem):
        parse_table(text, "routing.yaml")


def test_an_empty_file_is_an_empty_table_and_json_is_read() -> None:
    assert parse_table("", "x") == RoutingTable()
    parsed = parse_table('{"models": {"m": {"stable": 3, "canary": 4, "canaryWeight": 5}}}', "x")
    assert parsed.models["m"] == ModelRoute(stable=3, canary=4, canaryWeight=5)


def test_the_table_file_applies_changes_and_keeps_the_table_on_a_bad_one(tmp_path: Path) -> None:
    metrics = RuntimeMetrics()
    service = RouterService(metrics)
    path = tmp_path / "routing.yaml"
    watched = TableFile(path, service.replace, service.record_reload)
    assert not watched.check()  # missing: the (empty) table in force stays
    path.write_text("models: {ranker: {stable: 1, canary: 2, canaryWeight: 25}}")
    assert watched.check() and not watched.check()  # applied once; unchanged bytes are not read again
    assert metrics.router_canary_weight.labels("ranker")._value.get() == 25
    path.write_text("models: {ranker: {stable: 1, canaryWeight: 40}}")
    assert not watched.check()
    assert service.router.table.models["ranker"].canary_weight == 25
    path.write_text("models: {other: {stable: 4}}")
    assert watched.check()
    exposition = metrics.exposition().decode()
    assert 'croupier_router_canary_weight{model="other"} 0.0' in exposition
    assert 'model="ranker"' not in exposition  # a model that left the table leaves the weight gauge
    for outcome, count in {"applied": 2, "invalid": 1, "unreadable": 1}.items():
        assert metrics.router_table_reloads.labels(outcome)._value.get() == count


def test_records_count_per_version_label_and_code() -> None:
    metrics = RuntimeMetrics()
    service = RouterService(metrics, table(50))
    route = service.route("ranker", None, "canary", None)
    service.record(route, "OK", 0.002)
    service.record(route, "INVALID_ARGUMENT", 0.001)
    text = metrics.exposition().decode()
    assert 'croupier_router_requests_total{code="OK",label="canary",model="ranker",version="2"} 1.0' in text
    assert 'croupier_router_request_duration_seconds_count{label="canary",model="ranker",version="2"} 2.0' in text


def test_rest_statuses_are_counted_under_tf_servings_codes() -> None:
    assert code_of_http_status(200) == "OK" and code_of_http_status(400) == "INVALID_ARGUMENT"
    assert code_of_http_status(503) == "UNAVAILABLE" and code_of_http_status(418) == "UNKNOWN"
    assert all(code_of_http_status(status) in HTTP_STATUS for status in HTTP_STATUS.values())


@pytest.mark.parametrize(("header", "version"), [(None, None), ("2", 2), (" 7 ", 7), (str(2**63 - 1), 2**63 - 1)])
def test_a_pin_header_names_a_version(header: str | None, version: int | None) -> None:
    assert pinned_version(header) == version


@pytest.mark.parametrize("header", ["", "0", "-1", "two", "1.5", str(2**63), "1,2"])
def test_a_bad_pin_header_is_refused_naming_the_header(header: str) -> None:
    with pytest.raises(ValueError, match=PIN_HEADER):
        pinned_version(header)
