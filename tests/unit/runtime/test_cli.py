"""The console script's argument handling: a policy it cannot serve exits 2 with the reason; export writes JSONL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import yaml
from support.policies import policy_document

from croupier.runtime.cli import main
from croupier.runtime.errors import PolicyConfigError
from croupier.runtime.policy_file import load_policy

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _keep_logging_configuration() -> Iterator[None]:
    """`main` configures structlog for the process; give the next tests the configuration they had."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_a_file_that_is_not_a_decision_policy_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({**policy_document(), "kind": "Experiment"}))
    assert main(["--policy", str(policy), "--state-dir", str(tmp_path), "--port", "0"]) == 2
    assert "expected 'DecisionPolicy'" in capsys.readouterr().err


def test_redis_backend_without_a_url_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = policy_document(state={"backend": "Redis", "redis": {"urlSecretRef": {"name": "r", "key": "url"}}})
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(document))
    assert main(["--policy", str(policy), "--state-dir", str(tmp_path), "--port", "0"]) == 2
    assert "CROUPIER_RUNTIME_REDIS_URL" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"apiVersion": "v1"}, "apiVersion"),
        ({"metadata": {}}, "metadata.name"),
        ({"spec": {"arms": [], "algorithm": {"type": "UCB1"}}}, "invalid spec"),
        (
            {"spec": {"arms": [{"name": "a"}, {"name": "a"}], "algorithm": {"type": "UCB1"}}},
            "(?s)invalid spec.*duplicate arm names",
        ),
        ({"spec": {"arms": [{"name": "a"}], "algorithm": {"type": "LinUCB"}}}, "(?s)invalid spec.*context"),
    ],
)
def test_invalid_manifests_are_refused_with_the_reason(tmp_path: Path, change: dict[str, object], message: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({**policy_document(), **change}))
    with pytest.raises(PolicyConfigError, match=message):
        load_policy(policy)


def test_a_policy_the_policy_core_refuses_exits_2_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The spec model accepts any float as a prior mean; `build_policy` refuses a non-finite one.
    document = policy_document(
        algorithm={"type": "UCB1"},
        reward={"type": "Continuous"},
        arms=[{"name": "blue", "prior": {"mean": float("inf"), "weight": 1}}, {"name": "green"}],
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(document))
    assert main(["--policy", str(policy), "--state-dir", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "cannot serve the policy" in err
    assert "needs a finite mean" in err
    assert "Traceback" not in err
