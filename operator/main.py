"""The operator's Kopf entry module: ``kopf run -m croupier.operator.main --all-namespaces``.

Importing it registers every handler; ``startup`` applies the settings when Kopf starts.
"""

from __future__ import annotations

from croupier.operator import decisionpolicy, startup
from croupier.operator.logs import configure_logging
from croupier.operator.settings import load_settings

__all__ = ["decisionpolicy", "startup"]

configure_logging(load_settings().log_format, load_settings().log_level)
