"""The operator's Kopf entry module: ``kopf run -m croupier.operator.main --all-namespaces``.

The one place where the process reads its settings and configures logging. Importing it registers every Kind's
handlers; ``startup`` applies the settings when Kopf starts.
"""

from __future__ import annotations

from croupier.operator import startup
from croupier.operator.logs import configure_logging
from croupier.operator.settings import OperatorSettings

SETTINGS = OperatorSettings()
configure_logging(SETTINGS.log_format, SETTINGS.log_level)
startup.register(SETTINGS)

# Importing a Kind's handlers registers it (after the settings: a bad environment fails before anything runs).
from croupier.operator.decisionpolicy import handlers as decisionpolicy  # noqa: E402
from croupier.operator.experiment import handlers as experiment  # noqa: E402
from croupier.operator.modeldeployment import handlers as modeldeployment  # noqa: E402

__all__ = ["SETTINGS", "decisionpolicy", "experiment", "modeldeployment", "startup"]
