"""The header and file rules both served Kinds share: the same wording, each in its own error class."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from croupier.runtime.errors import ExperimentConfigError, PolicyConfigError
from croupier.runtime.experiments.config import load_experiment
from croupier.runtime.policy_file import load_policy

LOADERS: list[tuple[str, Callable[[Path], Any], type[PolicyConfigError], str]] = [
    ("DecisionPolicy", load_policy, PolicyConfigError, "a DecisionPolicy"),
    ("Experiment", load_experiment, ExperimentConfigError, "an Experiment"),
]


@pytest.mark.parametrize("served", LOADERS, ids=[k for k, *_ in LOADERS])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list\n", "{path}: expected {noun} manifest (a YAML mapping)"),
        ("kind: Other\n", "{path}: kind is 'Other', expected '{kind}'"),
        ("kind: {kind}\napiVersion: v0\n", "{path}: apiVersion is 'v0', expected 'croupier.dev/v1alpha1'"),
        ("kind: {kind}\napiVersion: croupier.dev/v1alpha1\n", "{path}: metadata.name is required"),
        (
            "kind: {kind}\napiVersion: croupier.dev/v1alpha1\nmetadata: {{name: x, generation: true}}\n",
            "{path}: metadata.generation must be an integer",
        ),
        ("kind: {kind}\napiVersion: croupier.dev/v1alpha1\nmetadata: {{name: x}}\n", "{path}: invalid spec: "),
        ("kind: [\n", "{path}: not valid YAML: "),
    ],
)
def test_a_bad_manifest_is_refused_with_the_same_words_for_each_kind(
    tmp_path: Path, served: tuple[str, Callable[[Path], Any], type[PolicyConfigError], str], text: str, message: str
) -> None:
    kind, load, error, noun = served
    path = tmp_path / "served.yaml"
    path.write_text(text.format(kind=kind))
    with pytest.raises(error) as raised:
        load(path)
    assert str(raised.value).startswith(message.format(path=path, kind=kind, noun=noun))


@pytest.mark.parametrize(
    ("load", "error", "what"),
    [(load_policy, PolicyConfigError, "policy"), (load_experiment, ExperimentConfigError, "experiment")],
)
def test_a_missing_file_names_what_was_expected(
    tmp_path: Path, load: Callable[[Path], Any], error: type[PolicyConfigError], what: str
) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(error) as raised:
        load(path)
    assert str(raised.value).startswith(f"cannot read the {what} file {path}: ")
