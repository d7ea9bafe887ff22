"""Test-time SavedModels and configs for the local model server (real TensorFlow, written once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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


# A scoring model in the layout of model-scored decisions (docs/decisionpolicy.md, "Model-scored decisions"): inputs
# `context` [batch, SCORING_CONTEXT] and `arms` [batch, n, SCORING_ARM], output `scores` [batch, n] = arms W context.
SCORING = "scoring"
SCORING_CONTEXT = 3
SCORING_ARM = 2


def scoring_weights(version: int) -> np.ndarray:
    """W [SCORING_ARM, SCORING_CONTEXT] of a scoring model version (deterministic per version)."""
    return np.random.default_rng(2000 + version).normal(size=(SCORING_ARM, SCORING_CONTEXT)).astype(np.float32) * 2


def scoring_scores(version: int, context: list[float], arms: list[list[float]]) -> np.ndarray:
    """What the scoring model answers for one context and the arms' feature rows (float32 arithmetic)."""
    c = np.asarray(context, dtype=np.float32)
    a = np.asarray(arms, dtype=np.float32)
    return np.asarray(a @ (scoring_weights(version) @ c), dtype=np.float32)


def write_scoring_model(base_path: Path, version: int) -> Path:
    """Write ``base_path/<version>`` as a bilinear scoring SavedModel (real TensorFlow, imported here only)."""
    import tensorflow as tf  # noqa: PLC0415 - only the tests that write models pay for TensorFlow

    weights = scoring_weights(version)

    class Scoring(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(weights, name="w")

        @tf.function(  # type: ignore[untyped-decorator]
            input_signature=[
                tf.TensorSpec([None, SCORING_CONTEXT], tf.float32, name="context"),
                tf.TensorSpec([None, None, SCORING_ARM], tf.float32, name="arms"),
            ]
        )
        def serve(self, context: Any, arms: Any) -> dict[str, Any]:
            projected = tf.linalg.matvec(self.w, context)  # [batch, SCORING_ARM]
            return {"scores": tf.einsum("bkd,bd->bk", arms, projected)}

    target = base_path / str(version)
    module = Scoring()
    tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve})
    return target
