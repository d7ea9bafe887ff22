"""``croupier-operator``: run the operator like production does, with flags from ``CROUPIER_OPERATOR_*`` settings.

Equivalent to ``kopf run -m croupier.operator.main --all-namespaces [--namespace ...] [--liveness URL]
[--standalone]``.
"""

from __future__ import annotations

import sys

import kopf

from croupier.operator.settings import settings_help


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print(settings_help())
        return 0
    from croupier.operator.main import SETTINGS  # noqa: PLC0415 - importing reads the settings, registers handlers

    kopf.run(
        clusterwide=not SETTINGS.namespaces,
        namespaces=SETTINGS.namespaces,
        liveness_endpoint=SETTINGS.liveness_endpoint,
        standalone=SETTINGS.peering_name is None,
        peering_name=SETTINGS.peering_name,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
