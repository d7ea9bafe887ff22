"""Small real SavedModels for tests and the demo: a ranker, a ranker that fails for some inputs, a slow ranker, and a
deliberately broken version folder. Written locally with TensorFlow; nothing is downloaded.

The ranker's ``serving_default`` signature takes ``context`` [batch, dims] and ``arms`` [batch, arms, dims] (float32)
and returns ``scores`` [batch, arms] = sum_d arms[b, a, d] * context[b, d] * w[d] + bias, where ``w`` and ``bias``
depend on the version (``ranker_weights``), so version 2 answers measurably differently from version 1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

DEFAULT_DIMS = 4

# A failing ranker fails a request when any row's first context feature falls in the failing bucket range:
# bucket = floor(|context[b, 0]| * 1000) mod 1000 / 1000, the row fails when bucket < error_fraction. A client that
# draws context[:, 0] uniformly from [0, 1) sees that fraction of single-row requests fail.
FAILURE_MESSAGE = "croupier test model: injected failure for this input"


def ranker_weights(version: int, dims: int = DEFAULT_DIMS) -> tuple[npt.NDArray[np.float32], float]:
    """The weights and bias of a ranker version (deterministic per version)."""
    rng = np.random.default_rng(1000 + version)
    return rng.normal(size=dims).astype(np.float32), float(version) / 10.0


def expected_scores(version: int, context: Any, arms: Any, dims: int = DEFAULT_DIMS) -> npt.NDArray[np.float32]:
    """What a ranker of this version answers for ``context`` [b, d] and ``arms`` [b, k, d] (float32 arithmetic)."""
    weights, bias = ranker_weights(version, dims)
    c = np.asarray(context, dtype=np.float32)
    a = np.asarray(arms, dtype=np.float32)
    return np.asarray(np.einsum("bkd,bd->bk", a, c * weights) + np.float32(bias), dtype=np.float32)


def failing_row(context_first_feature: float, error_fraction: float) -> bool:
    """Whether a failing ranker rejects a row with this first context feature (same rule as the graph)."""
    bucket = np.floor(np.abs(np.float32(context_first_feature)) * np.float32(1000.0)) % 1000 / 1000
    return bool(bucket < error_fraction)


def _write_atomically(base_path: Path, version: int, write: Any) -> Path:
    """Write into a temporary folder beside the target and rename it, so a polling server never sees half a model."""
    base_path.mkdir(parents=True, exist_ok=True)
    target = base_path / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists; a version folder is immutable once written")
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=base_path))
    try:
        write(staging / "model")
        (staging / "model").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def write_ranker(
    base_path: Path,
    version: int,
    *,
    dims: int = DEFAULT_DIMS,
    weights_version: int | None = None,
    error_fraction: float = 0.0,
    delay_ms: float = 0.0,
) -> Path:
    """Write ``base_path/<version>`` as a ranker SavedModel and return the folder.

    ``weights_version`` picks the weights (default: ``version``). ``error_fraction`` > 0 makes the model fail, with a
    real TensorFlow assertion (InvalidArgument), for rows whose first context feature falls in that fraction of
    buckets (``failing_row``). ``delay_ms`` > 0 makes every call spin in a ``tf.while_loop`` for that long before
    scoring (real TF work, measured with ``tf.timestamp``).
    """
    if not 0.0 <= error_fraction <= 1.0:
        raise ValueError(f"error_fraction must be within [0, 1], got {error_fraction}")
    if delay_ms < 0:
        raise ValueError(f"delay_ms must be non-negative, got {delay_ms}")
    weights, bias = ranker_weights(weights_version if weights_version is not None else version, dims)

    class Ranker(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.weights = tf.Variable(weights, name="weights")
            self.bias = tf.Variable(np.float32(bias), name="bias")

        @tf.function(  # type: ignore[untyped-decorator]
            input_signature=[
                tf.TensorSpec([None, dims], tf.float32, name="context"),
                tf.TensorSpec([None, None, dims], tf.float32, name="arms"),
            ]
        )
        def serve(self, context: Any, arms: Any) -> dict[str, Any]:
            if delay_ms > 0:
                start = tf.timestamp()
                deadline = start + tf.constant(delay_ms / 1000.0, tf.float64)
                spin = tf.ones([8, 8])

                def cond(t: Any, _x: Any) -> Any:
                    return t < deadline

                def body(_t: Any, x: Any) -> Any:
                    x = tf.linalg.matmul(x, spin) / 8.0
                    return tf.timestamp(), x

                _, spun = tf.while_loop(cond, body, [start, spin])
                context = context + 0.0 * tf.reduce_sum(spun)
            if error_fraction > 0:
                bucket = tf.math.floormod(tf.floor(tf.abs(context[:, 0]) * 1000.0), 1000.0) / 1000.0
                ok = tf.reduce_all(bucket >= error_fraction)
                with tf.control_dependencies([tf.debugging.Assert(ok, [FAILURE_MESSAGE])]):
                    context = tf.identity(context)
            scores = tf.einsum("bkd,bd->bk", arms, context * self.weights) + self.bias
            return {"scores": scores}

    def write(path: Path) -> None:
        module = Ranker()
        tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})

    return _write_atomically(base_path, version, write)


def write_broken(base_path: Path, version: int) -> Path:
    """Write ``base_path/<version>`` as a version folder whose saved_model.pb is not a SavedModel (fails to load)."""

    def write(path: Path) -> None:
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"\x0a\xff\xff\xff\xff\x0fthis is not a SavedModel protocol buffer")
        (path / "variables").mkdir()

    return _write_atomically(base_path, version, write)


EXAMPLE_FEATURE = "x"
EXAMPLE_CLASSES = (b"negative", b"positive")


def example_score(version: int, features: Any, dims: int = DEFAULT_DIMS) -> npt.NDArray[np.float32]:
    """What the example model's regress signature answers for feature vectors ``x`` [n, d]."""
    weights, bias = ranker_weights(version, dims)
    x = np.asarray(features, dtype=np.float32)
    return np.asarray(x @ weights + np.float32(bias), dtype=np.float32)


def write_example_model(base_path: Path, version: int, *, dims: int = DEFAULT_DIMS) -> Path:
    """Write a SavedModel over serialized ``tf.Example`` inputs with a ``classify`` and a ``regress`` signature, as
    Estimator exports had them (method names ``tensorflow/serving/classify`` and ``.../regress``; TF2's
    ``tf.saved_model.save`` writes ``predict`` and the names are set in saved_model.pb afterwards).

    Each example has a float feature ``x`` of length ``dims``; regress answers ``outputs`` = x·w + bias
    (``example_score``); classify answers ``classes`` ["negative", "positive"] with ``scores`` [1 - p, p], p =
    sigmoid(x·w + bias)."""
    weights, bias = ranker_weights(version, dims)
    spec = {EXAMPLE_FEATURE: tf.io.FixedLenFeature([dims], tf.float32)}

    class ExampleModel(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.weights = tf.Variable(weights, name="weights")
            self.bias = tf.Variable(np.float32(bias), name="bias")

        def score(self, serialized: Any) -> Any:
            x = tf.io.parse_example(serialized, spec)[EXAMPLE_FEATURE]
            return tf.linalg.matvec(x, self.weights) + self.bias

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])  # type: ignore[untyped-decorator]
        def regress(self, inputs: Any) -> dict[str, Any]:
            return {"outputs": self.score(inputs)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])  # type: ignore[untyped-decorator]
        def classify(self, inputs: Any) -> dict[str, Any]:
            p = tf.sigmoid(self.score(inputs))
            scores = tf.stack([1.0 - p, p], axis=1)
            classes = tf.tile(tf.constant([list(EXAMPLE_CLASSES)]), [tf.shape(p)[0], 1])
            return {"classes": classes, "scores": scores}

    def write(path: Path) -> None:
        module = ExampleModel()
        signatures = {"classify": module.classify, "regress": module.regress, "serving_default": module.regress}
        tf.saved_model.save(module, str(path), signatures=signatures)
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
        defs = proto.meta_graphs[0].signature_def
        defs["classify"].method_name = "tensorflow/serving/classify"
        defs["regress"].method_name = "tensorflow/serving/regress"
        defs["serving_default"].method_name = "tensorflow/serving/regress"
        (path / "saved_model.pb").write_bytes(proto.SerializeToString())

    return _write_atomically(base_path, version, write)


def main(argv: list[str] | None = None) -> int:
    """``python -m croupier.modelserver.savedmodels BASE_PATH VERSION [...]``: write one version folder."""
    parser = argparse.ArgumentParser(
        prog="python -m croupier.modelserver.savedmodels", description="Write a test SavedModel version folder."
    )
    parser.add_argument("base_path", type=Path, help="the model's base path (version folders go under it)")
    parser.add_argument("version", type=int)
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--broken", action="store_true", help="a folder whose saved_model.pb is not a SavedModel")
    kind.add_argument("--examples", action="store_true", help="classify/regress signatures over tf.Example inputs")
    parser.add_argument("--weights-version", type=int, default=None, help="ranker weights of this version")
    parser.add_argument("--error-fraction", type=float, default=0.0, help="ranker: fail this fraction of inputs")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="ranker: spin this long per call")
    args = parser.parse_args(argv)
    if args.version < 0:
        parser.error(f"version must be non-negative, got {args.version}")
    try:
        if args.broken:
            path = write_broken(args.base_path, args.version)
        elif args.examples:
            path = write_example_model(args.base_path, args.version)
        else:
            path = write_ranker(
                args.base_path,
                args.version,
                weights_version=args.weights_version,
                error_fraction=args.error_fraction,
                delay_ms=args.delay_ms,
            )
    except (ValueError, FileExistsError) as error:
        parser.error(str(error))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
