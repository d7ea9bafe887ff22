"""Croupier's Python SDK: ``Client`` (sync) and ``AsyncClient`` (asyncio) for a runtime's decision and experiment
APIs, batched reward senders, and local experiment assignment. Guide: docs/sdk-python.md."""

from croupier.api.wire import (
    AssignResponse,
    ExperimentStatsResponse,
    Exposure,
    ExposureResponse,
    Outcome,
    OutcomeResponse,
    RankResponse,
    Reward,
    RewardResponse,
    SlatePosition,
    StatsResponse,
)

from .aio import AsyncClient
from .assignment import LocalAssigner
from .batching import AsyncRewardBatcher, BatcherStats, Rejected, RewardBatcher
from .client import Client
from .errors import (
    ApiError,
    Conflict,
    CroupierError,
    Forbidden,
    InvalidArgument,
    InvalidRequest,
    NotFound,
    RewardQueueFull,
    RewardsNotDelivered,
    RuntimeUnreachable,
    ServiceUnavailable,
    Unauthorized,
)
from .protocol import Decision
from .retry import RetryPolicy

__all__ = [
    "ApiError",
    "AssignResponse",
    "AsyncClient",
    "AsyncRewardBatcher",
    "BatcherStats",
    "Client",
    "Conflict",
    "CroupierError",
    "Decision",
    "ExperimentStatsResponse",
    "Exposure",
    "ExposureResponse",
    "Forbidden",
    "InvalidArgument",
    "InvalidRequest",
    "LocalAssigner",
    "NotFound",
    "Outcome",
    "OutcomeResponse",
    "RankResponse",
    "Rejected",
    "RetryPolicy",
    "Reward",
    "RewardBatcher",
    "RewardQueueFull",
    "RewardResponse",
    "RewardsNotDelivered",
    "RuntimeUnreachable",
    "ServiceUnavailable",
    "SlatePosition",
    "StatsResponse",
    "Unauthorized",
]
