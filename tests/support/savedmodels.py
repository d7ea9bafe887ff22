"""Test-time SavedModels and configs for the local model server (real TensorFlow, written once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from croupier.modelserver import savedmodels

RANKER = "ranker"
SCORER = "scorer"  # classify and regress signatures over tf.Example inputs
DIMS = savedmodels.DEFAULT_DIMS
FAILING_VERSION = 3  # fails for the half of the inputs whose first context feature falls in [0, 0.5) (mod 1)
SLOW_VERSION = 4  # spins 60 ms per call before scoring
SLOW_MS = 60.0
ERROR_FRACTION = 0.5


@dataclass(frozen=True)
class Repository:
    """A model base path with versions 1 and 2 (rankers), 3 (failing), 4 (slow); the scorer's base path (version 1)."""

    base_path: Path
    scorer_path: Path


def ranker_repository(root: Path) -> Repository:
    base = root / RANKER
    savedmodels.write_ranker(base, 1)
    savedmodels.write_ranker(base, 2)
    savedmodels.write_ranker(base, FAILING_VERSION, weights_version=1, error_fraction=ERROR_FRACTION)
    savedmodels.write_ranker(base, SLOW_VERSION, weights_version=1, delay_ms=SLOW_MS)
    savedmodels.write_example_model(root / SCORER, 1)
    return Repository(base, root / SCORER)


def model_config(
    models: list[tuple[str, Path, list[int], dict[str, int]]],
) -> str:
    """A ModelServerConfig in text format: (name, base path, specific versions, labels) per model."""
    entries = []
    for name, base, versions, labels in models:
        specific = " ".join(f"versions: {v}" for v in versions)
        label_text = " ".join(f'version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items())
        entries.append(
            f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" '
            f"model_version_policy {{ specific {{ {specific} }} }} {label_text} }}"
        )
    return "model_config_list {\n" + "\n".join(entries) + "\n}\n"
