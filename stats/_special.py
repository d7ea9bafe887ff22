"""``scipy.special``, imported on first use.

The operator imports the statistics at start (an Experiment's status types) but computes with them only when an
Experiment is analysed; importing scipy.special costs every operator process about 29 MiB of RSS (numpy's share
aside), the largest part of its idle memory (docs/benchmarks/operator.md). The first analysis pays the import.
"""

from __future__ import annotations

import importlib
from typing import Any


class _LazySpecial:
    def __getattr__(self, name: str) -> Any:
        value = getattr(importlib.import_module("scipy.special"), name)
        setattr(self, name, value)  # later look-ups find the attribute itself
        return value


special: Any = _LazySpecial()
