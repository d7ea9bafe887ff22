"""DecisionPolicy documents and served policies for runtime tests, built in memory."""

from __future__ import annotations

from typing import Any

from croupier.runtime.policy_file import ServedPolicy, parse_policy


def policy_document(name: str = "banner", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "arms": [{"name": "blue"}, {"name": "green"}, {"name": "red"}],
        "algorithm": {"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.1}},
    }
    body.update(spec)
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": name, "namespace": "games", "generation": 2},
        "spec": body,
    }


def served_policy(**spec: Any) -> ServedPolicy:
    return parse_policy(policy_document(**spec))


CONTEXTUAL = {
    "algorithm": {"type": "LinUCB"},
    "context": {"features": ["level", "spend"]},
    "reward": {"type": "Continuous"},
}
