"""The HTTP routes of the data-plane services, as the app mounts them.

Each service contributes its POST and GET handlers (decoding and encoding bodies with its codec); the app adds
health, readiness, metrics and the OpenAPI document, routes by exact path and maps every error in one place. A model
router adds a function like `decision_routes`; the experiment service's are `experiment_routes`
(`croupier.runtime.experiments.http`).

Every path a service contributes declares its auth scope in `Routes.scopes` (assign: decide; exposures and
outcomes: rewards; anything that reads statistics: admin). The app refuses to start with a path that has none, so a
new route is never served without the token check when authentication is on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from croupier.api import wire
from croupier.api.decisionpolicy import AuthScope
from croupier.runtime.decisions.service import DecisionService
from croupier.runtime.http.batching import DecideBatcher
from croupier.runtime.http.codec import DecideCodec, decode_rewards, encode_rewards
from croupier.runtime.ranking.codec import RankCodec
from croupier.runtime.ranking.service import RankingService

JSON = b"application/json"

PostHandler = Callable[[bytes], Awaitable[bytes]]
"""Takes the request body, returns the 200 response body (JSON) or raises a CroupierError."""
GetHandler = Callable[[], tuple[int, bytes, bytes]]
"""Returns the status, the body and its content type."""


@dataclass(frozen=True, slots=True)
class Routes:
    post: dict[str, PostHandler]
    get: dict[str, GetHandler]
    scopes: dict[str, AuthScope]
    """The auth scope of every path above (the app refuses a route without one: fail closed)."""
    hot: str | None = None
    """The POST path the app matches first, on its shortest path (decide, or an experiment's assign)."""
    hot_batcher: DecideBatcher | None = None
    """The hot route's batcher when its answer is a synchronous function of the body (decide): the connection can
    then answer it without the ASGI cycle (`server.DirectRoute`)."""


def decision_routes(service: DecisionService, policy_version: str) -> Routes:
    """Decide and rank (each through a DecideBatcher: the decisions of one loop turn run back to back), rewards,
    stats."""
    codec = DecideCodec(service.schema, service.arm_names, policy_version)
    decode, decide, encode = codec.decode, service.decide, codec.encode
    ranking = RankingService(service)
    rank_codec = RankCodec(codec, service.arm_names, policy_version)

    def decide_json(body: bytes) -> bytes:
        return encode(decide(decode(body)))

    def rank_json(body: bytes) -> bytes:
        return rank_codec.encode(ranking.rank(rank_codec.decode(body)))

    async def rewards(body: bytes) -> bytes:
        items = decode_rewards(body, binary=service.binary)
        return encode_rewards(await service.rewards(items))

    async def decide_scored(body: bytes) -> bytes:  # spec.scoring: each decision awaits its model's Predict
        return encode(await service.decide_scored(decode(body)))

    async def rank_scored(body: bytes) -> bytes:  # one Predict per slate
        return rank_codec.encode(await ranking.rank_scored(rank_codec.decode(body)))

    scored = service.scorer is not None
    batcher = None if scored else DecideBatcher(decide_json)  # no direct answer for a decide that awaits a model
    return Routes(
        post={
            wire.DECIDE_PATH: decide_scored if batcher is None else batcher.submit,
            wire.RANK_PATH: rank_scored if scored else DecideBatcher(rank_json).submit,
            wire.REWARDS_PATH: rewards,
        },
        get={wire.STATS_PATH: lambda: (200, orjson.dumps(service.stats()), JSON)},
        scopes={
            wire.DECIDE_PATH: AuthScope.DECIDE,
            wire.RANK_PATH: AuthScope.DECIDE,
            wire.REWARDS_PATH: AuthScope.REWARDS,
            wire.STATS_PATH: AuthScope.ADMIN,
        },
        hot=wire.DECIDE_PATH,
        hot_batcher=batcher,
    )
