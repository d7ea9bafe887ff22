"""Every Kopf setting of the operator, in one place, applied at startup from ``OperatorSettings``.

Chosen so that a steady state writes nothing: handler progress and the last-handled spec live in annotations under
our own domain (purged after success; the status schema stays ours alone), Kopf posts only the Events we post
explicitly, and peering (periodic writes to a KopfPeering object) is off unless a peering name is configured.
The services every Kind's handlers use (the API client, the probe's HTTP client, the ``Supervisor``) are built
here once and kept in Kopf's memo.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from typing import Any

import httpx
import kopf

from croupier.api.common import GROUP
from croupier.operator import metrics
from croupier.operator.core.controller import Services
from croupier.operator.core.kube import KubeClient
from croupier.operator.core.observer import MANAGED_BY_SELECTOR
from croupier.operator.core.registration import watched_children
from croupier.operator.core.supervisor import Supervisor
from croupier.operator.logs import get_logger
from croupier.operator.settings import DOMAIN, FIELD_MANAGER, OperatorSettings


def seniority_priority(started: float) -> int:
    """A peering priority that is higher the earlier the replica started (ties broken at random).

    Kopf pauses a replica while a live peer has a higher priority, and every replica when two live ones share one.
    Replicas of one Deployment share their settings, so the priority comes from the start time: the oldest replica
    leads, a replica that (re)starts joins as a standby instead of taking the work over, and the random low digits
    make two replicas started in the same millisecond differ.
    """
    return -(int(started * 1000) * 1000 + random.randrange(1000))


def configure_kopf(settings: kopf.OperatorSettings, ours: OperatorSettings) -> None:
    settings.persistence.finalizer = f"{DOMAIN}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=DOMAIN)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=DOMAIN, key="last-handled-configuration"
    )
    # After its own patch Kopf waits for the watch to deliver that version before handling the object again; past the
    # timeout it handles the older version it has. Under load (hundreds of policies created at once) the watch lags
    # by more than Kopf's default 5 s, and a policy without its last-handled-configuration looks new: created twice.
    settings.persistence.consistency_timeout = 30.0
    settings.posting.enabled = True
    settings.posting.loggers = False  # log lines stay logs; Events are posted explicitly, on transitions only
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = FIELD_MANAGER
    settings.posting.reporting_instance = os.environ.get("POD_NAME") or socket.gethostname()
    settings.posting.event_name_prefix = "croupier-"
    settings.watching.server_timeout = ours.watch_server_timeout_seconds
    settings.watching.client_timeout = ours.watch_client_timeout_seconds
    settings.watching.connect_timeout = 10
    for resource in watched_children():
        # Server-side: the operator never receives (or caches) other people's ConfigMaps and Deployments.
        settings.watching.label_selectors[resource.group, resource.version, resource.plural] = MANAGED_BY_SELECTOR
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    if ours.peering_name:
        settings.peering.standalone = False
        settings.peering.mandatory = True
        settings.peering.name = ours.peering_name
        settings.peering.clusterwide = ours.peering_clusterwide
        settings.peering.stealth = True
        settings.peering.lifetime = ours.peering_lifetime_seconds
        settings.peering.priority = (
            ours.peering_priority if ours.peering_priority is not None else seniority_priority(time.time())
        )
    else:
        settings.peering.standalone = True
    settings.execution.max_workers = ours.api_workers


def register(ours: OperatorSettings) -> None:
    """Register the startup and cleanup handlers for these settings (the entry module calls this once)."""

    @kopf.on.startup()
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure_kopf(settings, ours)
        kube = KubeClient.from_kubeconfig(max_connections=ours.api_workers)
        http = httpx.AsyncClient(timeout=ours.probe_timeout_seconds, trust_env=False)
        memo.kube, memo.http = kube, http
        memo.supervisor = Supervisor(kube, Services(settings=ours, http=http, kube=kube))
        metrics.serve(ours.metrics_host, ours.metrics_port)
        get_logger("croupier.operator").info(
            "operator started",
            group=GROUP,
            runtime_image=ours.runtime_image,
            runtime_url_template=ours.runtime_url_template,
            probe_enabled=ours.probe_enabled,
            resync_interval_seconds=ours.resync_interval_seconds,
            peering=ours.peering_name or "standalone",
            metrics_port=ours.metrics_port,
        )

    @kopf.on.cleanup()
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        http = getattr(memo, "http", None)
        if isinstance(http, httpx.AsyncClient):
            await http.aclose()
        kube = getattr(memo, "kube", None)
        if isinstance(kube, KubeClient):
            await kube.aclose()
