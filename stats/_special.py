"""``scipy.special``, imported on first use.

Importing scipy.special costs a process about 16 MiB of RSS on top of numpy (docs/benchmarks/operator.md); only an
analysis computes with it, so the first analysis pays the import (the operator's Experiment observer does it in a
thread beforehand: ``croupier.stats.COMPUTING_MODULES``).
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
