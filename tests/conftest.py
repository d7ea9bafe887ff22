"""Every test is marked by the folder it lives in: tests/unit -> ``unit``, tests/integration -> ``integration``,
tests/e2e -> ``e2e`` (a ``pytestmark`` in a conftest is ignored by pytest, so the marker comes from this hook)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MARKER_BY_FOLDER = {"unit": pytest.mark.unit, "integration": pytest.mark.integration, "e2e": pytest.mark.e2e}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            marker = MARKER_BY_FOLDER.get(item.path.relative_to(HERE).parts[0])
            if marker is not None:
                item.add_marker(marker)
