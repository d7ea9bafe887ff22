"""Every Kopf handler the Kinds register is a coroutine: Kopf runs a plain function in its thread pool.

A thread hop per child event costs CPU, and what a handler allocates there (the index entries Kopf keeps) lands in the
worker threads' malloc arenas, where it fragments: the operator's peak RSS (docs/benchmarks/operator.md).
"""

from __future__ import annotations

import inspect

import kopf

# Importing a Kind's handlers registers them in Kopf's default registry.
from croupier.operator.decisionpolicy import handlers as _decisionpolicy  # noqa: F401
from croupier.operator.experiment import handlers as _experiment  # noqa: F401
from croupier.operator.modeldeployment import handlers as _modeldeployment  # noqa: F401


def test_every_resource_handler_of_ours_is_a_coroutine() -> None:
    registry = kopf.get_default_registry()
    handlers = [
        handler
        for kind_registry in (registry._indexing, registry._watching, registry._spawning, registry._changing)
        for handler in kind_registry.get_all_handlers()
        if handler.fn.__module__.startswith("croupier.")
    ]
    registered = {str(h.id) for h in handlers}
    assert {"reconcile", "supervise", "children_deployments", "poke_owner_deployments"} <= registered, registered
    plain = sorted(
        f"{h.id} ({h.fn.__module__}.{h.fn.__qualname__})" for h in handlers if not inspect.iscoroutinefunction(h.fn)
    )
    assert plain == [], f"run in Kopf's thread pool: {plain}"
