"""Model versions and their lifecycle: the aspired versions of each model, loaded off the request path by one loader
thread, the version labels, and the lookups a request makes (TF Serving's ServerCore, in small).

States follow TF Serving's ServableState: START → LOADING → AVAILABLE → UNLOADING → END; a version that fails to load
goes to END with its error, which GetModelStatus reports. Versions that reach END stay visible in the status (as in
TF Serving's ServableStateMonitor) until they are aspired again.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from croupier.modelserver.config import ServerConfig
from croupier.modelserver.errors import Code, ServingError, failed_precondition, invalid_argument, not_found


class State(enum.IntEnum):
    """``tensorflow.serving.ModelVersionStatus.State``."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: State
    error: ServingError | None


@dataclass(frozen=True)
class ModelRequest:
    """A ModelSpec's choice: a version, a label, or neither (the latest available version)."""

    name: str
    version: int | None = None
    label: str | None = None


class Servable:
    """A loaded SavedModel version: its signature defs (as written in saved_model.pb) and callable signatures."""

    def __init__(self, name: str, version: int, path: Path, module: Any, signature_defs: dict[str, Any]) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.module = module
        self.signature_defs = signature_defs

    def function(self, signature: str) -> Any:
        return self.module.signatures[signature]


Loader = Callable[[str, int, Path], Servable]
_Action = tuple[str, str, int, int, int]  # kind ("load" | "unload"), model, version, generation, attempt


def load_saved_model(name: str, version: int, path: Path) -> Servable:
    """Load a SavedModel with TensorFlow; a failure becomes a ServingError with TensorFlow's code and message."""
    try:
        module = tf.saved_model.load(str(path))
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
    except tf.errors.OpError as error:
        raise ServingError(Code(error.error_code), error.message) from error
    except FileNotFoundError as error:
        raise not_found(str(error)) from error
    except OSError as error:
        raise ServingError(Code.DATA_LOSS, str(error)) from error
    except Exception as error:  # a SavedModel TF cannot make sense of: report it, never kill the loader
        raise ServingError(Code.UNKNOWN, f"{type(error).__name__}: {error}") from error
    signature_defs = dict(proto.meta_graphs[0].signature_def) if proto.meta_graphs else {}
    return Servable(name, version, path, module, signature_defs)


def versions_on_disk(base_path: Path) -> list[int]:
    """The numeric version folders under a model's base path (TF Serving ignores every other entry)."""
    try:
        entries = list(base_path.iterdir())
    except OSError:
        return []
    return sorted(int(p.name) for p in entries if p.name.isdigit() and p.is_dir())


def describe(request: ModelRequest, version: int | None = None) -> str:
    """TF Serving's ServableRequest::DebugString: ``Latest(name)`` or ``Specific(name, version)``."""
    if version is not None:
        return f"Specific({request.name}, {version})"
    return f"Latest({request.name})"


@dataclass
class _Version:
    path: Path
    state: State
    generation: int
    error: ServingError | None = None
    servable: Servable | None = None
    aspired: bool = True  # False once the config or the folders stop asking for it


class ModelManager:
    """Owns every model version, the labels and the loader thread. Thread-safe; waiters use one condition."""

    def __init__(
        self,
        *,
        loader: Loader = load_saved_model,
        load_delay_seconds: float = 0.0,
        max_load_retries: int = 5,
        load_retry_interval_seconds: float = 60.0,
        allow_version_labels_for_unavailable_models: bool = False,
    ) -> None:
        self._loader = loader
        self._load_delay = load_delay_seconds
        self._max_retries = max_load_retries
        self._retry_interval = max(0.0, load_retry_interval_seconds)
        self._allow_unavailable_labels = allow_version_labels_for_unavailable_models
        self._changed = threading.Condition()
        self._config = ServerConfig(())
        self._versions: dict[str, dict[int, _Version]] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._generation = 0
        # (due time, sequence, action): loads and unloads are due at once in order; a failed load's retry later.
        self._actions: list[tuple[float, int, _Action]] = []
        self._sequence = itertools.count()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._reload_lock = threading.Lock()

    # --- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_loader, name="modelserver-loader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            with self._changed:
                self._stopping = True
                self._changed.notify_all()
            self._thread.join(timeout=10)
            self._thread = None

    @property
    def config(self) -> ServerConfig:
        with self._changed:
            return self._config

    # --- configuration ------------------------------------------------------------------------------------------
    def apply_config(self, config: ServerConfig, *, wait_seconds: float | None = None) -> None:
        """Replace the whole config: load aspired versions, unload the rest (omitted models unload), wait for new
        models' latest version, then install the labels (FAILED_PRECONDITION, labels unchanged, when one points at a
        version that is not AVAILABLE). Raises UNKNOWN when a new model did not become available (TF Serving's text).
        """
        with self._reload_lock:
            with self._changed:
                new_models = [m.name for m in config.models if self._config.model(m.name) is None]
                self._config = config
                self._aspire_locked()
            self._wait_for_models(new_models, wait_seconds)
            self._install_labels(config)

    def rescan(self) -> None:
        """The file-system poll: aspire the versions now on disk under the current config (labels unchanged)."""
        with self._reload_lock, self._changed:
            self._aspire_locked()

    def _aspire_locked(self) -> None:
        loads: list[tuple[str, int]] = []
        unloads: list[tuple[str, int]] = []
        configured = {m.name: m for m in self._config.models}
        for model in self._config.models:
            versions = self._versions.setdefault(model.name, {})
            aspired = model.policy.aspired(versions_on_disk(model.base_path))
            for number in aspired:
                current = versions.get(number)
                # A version that failed to load stays failed while it is aspired (TF Serving does not retry it past
                # --max_num_load_retries); one that was unloaded, or failed and was dropped, loads again.
                if current is None or (current.state == State.END and not current.aspired):
                    self._generation += 1
                    versions[number] = _Version(model.base_path / str(number), State.START, self._generation)
                    loads.append((model.name, number))
            for number, current in versions.items():
                if number not in aspired:
                    current.aspired = False
                    if current.state in (State.START, State.LOADING, State.AVAILABLE):
                        unloads.append((model.name, number))
        for name, versions in self._versions.items():
            if name not in configured:
                for number, current in versions.items():
                    current.aspired = False
                    if current.state != State.END:
                        unloads.append((name, number))
        # Loads first: a model keeps serving its old version until the new one is AVAILABLE.
        for name, number in loads:
            self._schedule(0.0, ("load", name, number, self._versions[name][number].generation, 0))
        for name, number in unloads:
            self._schedule(0.0, ("unload", name, number, self._versions[name][number].generation, 0))
        self._changed.notify_all()

    def _schedule(self, due: float, action: _Action) -> None:
        heapq.heappush(self._actions, (due, next(self._sequence), action))

    def _wait_for_models(self, names: list[str], wait_seconds: float | None) -> None:
        deadline = None if wait_seconds is None else time.monotonic() + wait_seconds

        def latest(name: str) -> _Version | None:
            versions = self._versions.get(name, {})
            return versions[max(versions)] if versions else None

        def settled() -> bool:
            return all((v := latest(n)) is None or v.state in (State.AVAILABLE, State.END) for n in names)

        with self._changed:
            while not settled():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._changed.wait(timeout=remaining if remaining is not None else 1.0)
            failed = []
            for name in names:
                version = latest(name)
                if version is None:
                    # TF Serving waits for a first version to appear; this server says at once that none is there.
                    model = self._config.model(name)
                    where = f" under {model.base_path}" if model is not None else ""
                    failed.append(f"{{name: {name}: no version folder its version policy selects{where}}}")
                elif version.state != State.AVAILABLE:
                    number = max(self._versions.get(name, {}))
                    reason = (
                        f" due to error: {version.error.code.name}: {version.error.message}" if version.error else ""
                    )
                    failed.append(f"{{name: {name} version: {number}{reason}}}")
        if failed:
            raise ServingError(
                Code.UNKNOWN, f"{len(failed)} model(s) did not become available: {{{', '.join(failed)}, }}"
            )

    def _install_labels(self, config: ServerConfig) -> None:
        with self._changed:
            new: dict[str, dict[str, int]] = {}
            for model in config.models:
                for label, number in model.version_labels.items():
                    existing = self._labels.get(model.name, {}).get(label)
                    allowed = self._allow_unavailable_labels and existing in (None, number)
                    version = self._versions.get(model.name, {}).get(number)
                    if not allowed and (version is None or version.state != State.AVAILABLE):
                        raise failed_precondition(
                            f"Request to assign label to version {number} of model {model.name}, "
                            "which is not currently available for inference"
                        )
                    new.setdefault(model.name, {})[label] = number
            self._labels = new
            self._changed.notify_all()

    # --- the loader thread --------------------------------------------------------------------------------------
    def _next_action(self) -> _Action | None:
        """The next due action (None when stopping); waits on the condition, so new work wakes the loader."""
        with self._changed:
            while not self._stopping:
                if self._actions:
                    due, _, action = self._actions[0]
                    wait = due - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._actions)
                        return action
                    self._changed.wait(timeout=wait)
                else:
                    self._changed.wait()
            return None

    def _run_loader(self) -> None:
        while (action := self._next_action()) is not None:
            kind, name, number, generation, attempt = action
            with self._changed:
                version = self._versions.get(name, {}).get(number)
                if version is None or version.generation != generation:
                    continue
                if kind == "unload":
                    if version.state == State.END:
                        continue
                    version.state = State.UNLOADING
                    self._changed.notify_all()
                elif version.state != (State.START if attempt == 0 else State.LOADING):
                    continue  # unloaded while it waited for its retry
                else:
                    version.state = State.LOADING
                    self._changed.notify_all()
            if kind == "unload":
                with self._changed:
                    version.servable = None
                    version.state = State.END
                    self._changed.notify_all()
                continue
            if self._load_delay > 0 and attempt == 0:
                time.sleep(self._load_delay)
            try:
                servable = self._loader(name, number, version.path)
                error = None
            except ServingError as failure:
                servable, error = None, failure
            with self._changed:
                if version.generation != generation or version.state != State.LOADING:
                    self._changed.notify_all()
                    continue
                if error is not None and attempt < self._max_retries:
                    # TF Serving's LoaderHarness retries every failure; the version stays LOADING meanwhile.
                    self._schedule(
                        time.monotonic() + self._retry_interval, ("load", name, number, generation, attempt + 1)
                    )
                else:
                    version.servable = servable
                    version.error = error
                    version.state = State.AVAILABLE if servable is not None else State.END
                self._changed.notify_all()

    # --- lookups --------------------------------------------------------------------------------------------------
    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """GetModelStatus: one version, or every version TF Serving has seen for the model (newest first)."""
        with self._changed:
            versions = self._versions.get(name, {})
            if version is not None:
                if version not in versions:
                    raise not_found(f"Could not find version {version} of model {name}")
                v = versions[version]
                return [VersionStatus(version, v.state, v.error)]
            if not versions:
                raise not_found(f"Could not find any versions of model {name}")
            return [VersionStatus(n, v.state, v.error) for n, v in sorted(versions.items(), reverse=True)]

    def resolve(self, request: ModelRequest) -> Servable:
        """The servable a request asks for (TF Serving's GetServableHandle) or TF Serving's error."""
        if request.version is not None and request.label is not None:
            raise invalid_argument(
                f"Both model version ({request.version}) and model version label ({request.label}) cannot be supplied."
            )
        with self._changed:
            number = request.version
            if request.label is not None:
                number = self._labels.get(request.name, {}).get(request.label)
                if number is None:
                    raise invalid_argument(f"Unrecognized servable version label: {request.label}")
            versions = self._versions.get(request.name, {})
            if number is None:
                available = [n for n, v in versions.items() if v.state == State.AVAILABLE]
                if not available:
                    raise not_found(f"Servable not found for request: {describe(request)}")
                number = max(available)
            found = versions.get(number)
            if found is None or found.state != State.AVAILABLE or found.servable is None:
                raise not_found(f"Servable not found for request: {describe(request, number)}")
            return found.servable

    def labels(self, name: str) -> dict[str, int]:
        with self._changed:
            return dict(self._labels.get(name, {}))

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate`` (called under the lock) holds or ``timeout`` passes."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout=timeout)
