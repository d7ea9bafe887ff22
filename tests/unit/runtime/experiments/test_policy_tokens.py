"""The decide-scope token an Experiment runtime sends to its DecisionPolicy targets (targets.PolicyTokens)."""

from __future__ import annotations

from pathlib import Path

import pytest

from croupier.runtime.experiments.targets import PolicyClient, PolicyTokens

pytestmark = pytest.mark.unit


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _client(directory: Path, clock: _Clock) -> PolicyClient:
    return PolicyClient(
        template="http://{name}.{namespace}.svc:80", namespace="shop", tokens=PolicyTokens(directory, clock=clock)
    )


def test_sends_the_first_token_of_the_policys_file(tmp_path: Path) -> None:
    (tmp_path / "banner").write_text("\n  tok-new  \ntok-old\n")
    client = _client(tmp_path, _Clock())
    assert client.headers("banner") == {"content-type": "application/json", "authorization": "Bearer tok-new"}


def test_no_file_or_no_directory_sends_no_token(tmp_path: Path) -> None:
    (tmp_path / "banner").write_text("tok")
    assert "authorization" not in _client(tmp_path, _Clock()).headers("other")
    assert "authorization" not in _client(tmp_path / "absent", _Clock()).headers("banner")
    (tmp_path / "blank").write_text("\n \n")
    assert "authorization" not in _client(tmp_path, _Clock()).headers("blank")
    plain = PolicyClient(template="http://{name}.{namespace}.svc:80", namespace="shop")
    assert plain.headers("banner") == {"content-type": "application/json"}


def test_rotation_is_picked_up_after_the_reload_interval(tmp_path: Path) -> None:
    clock = _Clock()
    path = tmp_path / "banner"
    path.write_text("one")
    client = _client(tmp_path, clock)
    assert client.headers("banner")["authorization"] == "Bearer one"
    replacement = tmp_path / "next"
    replacement.write_text("two-rotated")
    replacement.replace(path)  # as the kubelet swaps files: a new inode
    clock.now = 0.5
    assert client.headers("banner")["authorization"] == "Bearer one"  # at most one stat a second
    clock.now = 1.5
    assert client.headers("banner")["authorization"] == "Bearer two-rotated"
    path.unlink()
    clock.now = 3.0
    assert "authorization" not in client.headers("banner")
