"""How a failed resync is logged: an API server outage as warnings that do not count, anything else as an error only
once it repeats (a 403 right after an API server restart clears on the next cycle)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from croupier.operator.core.kube import KubeError
from croupier.operator.core.supervisor import RESYNC_FAILURES_LOGGED_AS_ERRORS, ObjectHandle, Supervisor

pytestmark = pytest.mark.unit

CONTROLLER: Any = SimpleNamespace(kind="DecisionPolicy")
BODY = {"metadata": {"namespace": "team", "name": "banner"}}


def _fail(handle: ObjectHandle, error: Exception) -> dict[str, Any]:
    with capture_logs() as logs:
        try:
            raise error
        except Exception as caught:
            Supervisor.record_failure(CONTROLLER, BODY, handle, caught)
    (entry,) = logs
    return entry


def test_an_outage_is_warned_about_and_not_counted_then_a_refusal_becomes_an_error_when_it_repeats() -> None:
    handle = ObjectHandle()
    for status in (0, 503, 429, 0, 504, 500, 0):
        entry = _fail(handle, KubeError(status, "ClientConnectorError", "Cannot connect"))
        assert (entry["log_level"], entry["event"]) == ("warning", "resync postponed: the API server did not answer")
    assert handle.failures == 0
    refused = KubeError(403, "Forbidden", "cannot patch resource decisionpolicies/status")
    levels = [_fail(handle, refused)["log_level"] for _ in range(RESYNC_FAILURES_LOGGED_AS_ERRORS)]
    assert levels == ["warning"] * (RESYNC_FAILURES_LOGGED_AS_ERRORS - 1) + ["error"]
    assert handle.failures == RESYNC_FAILURES_LOGGED_AS_ERRORS


def test_any_other_failure_names_its_type_and_the_object() -> None:
    entry = _fail(ObjectHandle(), ValueError("bad table"))
    assert entry["event"] == "resync failed; retrying"
    assert entry["error"] == "ValueError: bad table"
    assert (entry["kind"], entry["namespace"], entry["name"], entry["failures"]) == (
        "DecisionPolicy",
        "team",
        "banner",
        1,
    )
