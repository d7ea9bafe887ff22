"""`croupier-runtime router` refuses bad settings with exit code 2 and a message naming the setting."""

from __future__ import annotations

import pytest

from croupier.runtime.cli import main

BAD_SETTINGS = [
    (["--poll-seconds", "0"], "poll_seconds"),
    (["--rest-port", "70000"], "rest_port"),
    (["--upstream-rest", "ftp://model:8511"], "upstream_rest"),
    (["--upstream-rest", "http://model:8511/v1?x=1"], "upstream_rest"),
]
"""Bad router flags and the setting each error must name: both routers refuse them with exit 2 (the compiled one in
tests/integration/runtime/modelrouter/test_gorouter_go.py)."""


@pytest.mark.parametrize(("argv", "named"), BAD_SETTINGS)
def test_bad_router_settings_exit_2(argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["router", *argv]) == 2
    assert named in capsys.readouterr().err
