"""TF Serving's own configuration files, in protobuf text format: the model config (``--model_config_file``), the
batching parameters (``--batching_parameters_file``) and the monitoring config (``--monitoring_config_file``).

Pure string builders. Values are quoted with ``_quote`` (text-format string escaping), numbers are ints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from croupier.api.modeldeployment import BatchingSpec

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def model_config(name: str, base_path: str, versions: Sequence[int], labels: Mapping[str, int]) -> str:
    """A ``ModelServerConfig`` with one model: exactly ``versions`` loaded, ``labels`` pointing at some of them.

    TF Serving reloads this file on every poll and applies it whole: a version left out is unloaded, and a label may
    only point at a version that is already AVAILABLE (callers only label those).
    """
    unknown = {label: v for label, v in labels.items() if v not in versions}
    if unknown:
        raise ValueError(f"labels {unknown} point at versions not in {list(versions)}")
    lines = [
        "model_config_list {",
        "  config {",
        f"    name: {_quote(name)}",
        f"    base_path: {_quote(base_path)}",
        '    model_platform: "tensorflow"',
        "    model_version_policy {",
        "      specific {",
        *(f"        versions: {int(v)}" for v in sorted(set(versions))),
        "      }",
        "    }",
    ]
    for label in sorted(labels):
        lines += ["    version_labels {", f"      key: {_quote(label)}", f"      value: {int(labels[label])}", "    }"]
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def batching_parameters(batching: BatchingSpec) -> str:
    """A ``BatchingParameters`` message (TF Serving's ``--batching_parameters_file``)."""
    lines = [
        f"max_batch_size {{ value: {batching.max_batch_size} }}",
        f"batch_timeout_micros {{ value: {batching.batch_timeout_micros} }}",
    ]
    if batching.num_batch_threads is not None:
        lines.append(f"num_batch_threads {{ value: {batching.num_batch_threads} }}")
    if batching.max_enqueued_batches is not None:
        lines.append(f"max_enqueued_batches {{ value: {batching.max_enqueued_batches} }}")
    lines += [f"allowed_batch_sizes: {size}" for size in batching.allowed_batch_sizes or ()]
    if batching.pad_variable_length_inputs:
        lines.append("pad_variable_length_inputs: true")
    return "\n".join(lines) + "\n"


def monitoring_config() -> str:
    """A ``MonitoringConfig`` that turns on TF Serving's Prometheus endpoint (served on the REST port)."""
    return f"prometheus_config {{\n  enable: true\n  path: {_quote(PROMETHEUS_PATH)}\n}}\n"
