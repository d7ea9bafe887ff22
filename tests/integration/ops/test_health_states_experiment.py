"""Experiment states as GitOps tools see them, driven against the real control plane, the operator process and a real
experiment runtime process (``croupier-runtime --experiment``, played by the test as the kubelet would run the pod),
and recorded as health-check testdata (CROUPIER_RECORD_HEALTH_TESTDATA, see health_recorder.py)."""

from __future__ import annotations

import json

from integration.operator import test_experiment
from integration.operator.test_experiment import AB, Experiments, experiment
from integration.ops.health_recorder import record

experiments = test_experiment.experiments  # the fixture, found by name


def test_a_runtime_that_never_starts_and_one_that_never_answers(experiments: Experiments) -> None:
    experiments.stop()
    experiments.runtime.stop()  # nothing answers on the runtime's port
    # No volume for the state claim (the test cluster has no provisioner): the pod is never scheduled.
    experiments.kubectl.apply(json.dumps(experiment("unbound", experiments.namespace, AB)))
    body = experiments.wait_condition("unbound", "Progressing", "True", "RolloutInProgress")
    record(body)
    # With its volume the pod runs, but no runtime answers.
    experiments.apply(experiment("silent", experiments.namespace, AB))
    body = experiments.wait_condition("silent", "Degraded", "True", "RuntimeUnreachable")
    record(body)


def test_equal_variants_end_with_no_significant_difference(experiments: Experiments) -> None:
    # A fixed horizon planned for a large effect: a small sample settles it.
    analysis = {"method": "FixedHorizon", "minimumSamplesPerVariant": 200}
    metric = {"name": "conversion", "type": "Binary", "direction": "Increase", "minimumDetectableEffect": 0.5}
    experiments.apply(experiment("even", experiments.namespace, AB, analysis=analysis, metric=metric))
    experiments.serve("even", "Running")
    experiments.traffic(4000, {"a": 0.2, "b": 0.2})
    body = experiments.wait_condition("even", "Ready", "True", "NoSignificantDifference")
    assert "winner" not in body["status"]
    record(body)
