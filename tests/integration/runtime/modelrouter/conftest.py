"""Every router test runs against both model routers: ``python`` (``croupier-runtime router``) and ``go`` (the compiled
``croupier-modelrouter``, runtime/gorouter, built once by its build.sh): the same contract, the same assertions."""

from __future__ import annotations

import pytest
from support.modelrouting import ROUTER_IMPLEMENTATIONS


@pytest.fixture(scope="session", params=ROUTER_IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> str:
    return str(request.param)
