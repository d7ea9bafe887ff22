"""Fixtures for runtime unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def run() -> Callable[[Any], Any]:
    """Run a coroutine to completion (the suite has no asyncio plugin)."""
    return asyncio.run
