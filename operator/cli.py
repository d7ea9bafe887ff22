"""``croupier-operator``: run the operator like production does, with flags from ``CROUPIER_OPERATOR_*`` settings.

Equivalent to ``kopf run -m croupier.operator.main --all-namespaces [--namespace ...] [--liveness URL]
[--standalone]``.
"""

from __future__ import annotations

import sys

import kopf

from croupier.operator import main as _handlers  # noqa: F401 - importing registers the handlers
from croupier.operator.logs import configure_logging
from croupier.operator.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("Settings (environment):")
        for name, info in load_settings().model_fields.items():
            print(f"  CROUPIER_OPERATOR_{name.upper()}: {info.description or ''}")
        return 0
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    kopf.run(
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=settings.liveness_endpoint,
        standalone=settings.peering_name is None,
        peering_name=settings.peering_name,
        priority=0,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
