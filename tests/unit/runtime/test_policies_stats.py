"""Additive sufficient statistics: arithmetic, serialization, and sharing state between policy replicas."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from croupier.runtime.policies import ALGORITHMS, Policy, PolicyInputError, SufficientStats, build_policy

pytestmark = pytest.mark.unit

ARMS = ["red", "green", "blue", "amber"]
D = 3


def make(algorithm: str, seed: int = 0) -> Policy:
    contextual = algorithm in ("LinUCB", "LinearThompson")
    return build_policy(algorithm, {}, ARMS, dimension=D if contextual else 0, seed=seed)


def feed(policy: Policy, rng: np.random.Generator, steps: int) -> None:
    for _ in range(steps):
        arm = int(rng.integers(0, len(ARMS)))
        reward = float(rng.random() < 0.3 + 0.1 * arm)
        policy.update(arm, reward, rng.normal(size=D) if policy.contextual else None)


def filled(k: int = 3, d: int = 2, seed: int = 0, steps: int = 25) -> SufficientStats:
    rng = np.random.default_rng(seed)
    stats = SufficientStats.zeros(k, d)
    for _ in range(steps):
        stats.add(int(rng.integers(0, k)), float(rng.normal()), rng.normal(size=d) if d else None)
    return stats


def test_add_accumulates_every_field() -> None:
    stats = SufficientStats.zeros(2, 2)
    stats.add(1, 2.0, [1.0, 3.0])
    stats.add(1, -1.0, np.array([2.0, 0.0]))
    assert stats.n.tolist() == [0.0, 2.0]
    assert stats.s.tolist() == [0.0, 1.0]
    assert stats.s2.tolist() == [0.0, 5.0]
    assert stats.A[1].tolist() == [[5.0, 3.0], [3.0, 9.0]]
    assert stats.b[1].tolist() == [0.0, 6.0]
    assert stats.sx[1].tolist() == [3.0, 3.0]
    assert stats.A[0].tolist() == [[0.0, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize(
    ("arm", "reward", "x", "field"),
    [
        (2, 1.0, [0.0, 0.0], "arm"),
        (-1, 1.0, [0.0, 0.0], "arm"),
        (True, 1.0, [0.0, 0.0], "arm"),
        (0, math.nan, [0.0, 0.0], "reward"),
        (0, math.inf, [0.0, 0.0], "reward"),
        (0, 1.0, [0.0], "context"),
        (0, 1.0, [0.0, math.nan], "context"),
        (0, 1.0, None, "context"),
    ],
)
def test_add_rejects_bad_input_and_changes_nothing(arm: int, reward: float, x: list[float] | None, field: str) -> None:
    stats = SufficientStats.zeros(2, 2)
    with pytest.raises(PolicyInputError) as caught:
        stats.add(arm, reward, x)
    assert caught.value.field == field
    assert stats.is_zero()


@given(seed=st.integers(0, 2**16), k=st.integers(1, 4), d=st.integers(0, 3))
@settings(max_examples=25, deadline=None)
def test_serialization_round_trips(seed: int, k: int, d: int) -> None:
    stats = filled(k, d, seed)
    for restored in (
        SufficientStats.from_dict(json.loads(json.dumps(stats.to_dict()))),
        SufficientStats.from_bytes(stats.to_bytes()),
        SufficientStats.from_flat(k, d, stats.to_flat()),
    ):
        assert restored.n_arms == k and restored.dimension == d
        for mine, theirs in zip(stats._fields(), restored._fields(), strict=True):
            assert np.array_equal(mine, theirs)


def test_flat_layout_is_documented_order() -> None:
    stats = filled(2, 2)
    flat = stats.to_flat()
    assert flat.shape == (SufficientStats.flat_size(2, 2),) == (3 * 2 + 2 * 4 + 2 * 2 * 2,)
    assert np.array_equal(flat[:2], stats.n)
    assert np.array_equal(flat[6:14], stats.A.ravel())
    # Deltas add element-wise in flat form: what a store that only knows numbers does.
    other = filled(2, 2, seed=9)
    total = SufficientStats.from_flat(2, 2, stats.to_flat() + other.to_flat())
    assert total.allclose(stats + other)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"arms": 2, "dimension": 0, "n": [0, 0], "s": [0, 0], "s2": [0, 0], "A": [], "b": []}, "stats.sx"),
        ({"arms": 2, "dimension": 0, "n": [0], "s": [0, 0], "s2": [0, 0], "A": [], "b": [], "sx": []}, "stats.n"),
        (
            {"arms": 1, "dimension": 0, "n": [math.nan], "s": [0], "s2": [0], "A": [], "b": [], "sx": []},
            "stats.n",
        ),
        ({"dimension": 0}, "stats"),
    ],
)
def test_from_dict_names_the_bad_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(PolicyInputError) as caught:
        SufficientStats.from_dict(data)
    assert caught.value.field == field


def test_from_bytes_rejects_garbage() -> None:
    blob = filled().to_bytes()
    with pytest.raises(PolicyInputError, match="payload"):
        SufficientStats.from_bytes(blob[:-8])
    with pytest.raises(PolicyInputError, match="magic"):
        SufficientStats.from_bytes(b"XXXX" + blob[4:])


def test_merge_rejects_other_shapes() -> None:
    with pytest.raises(PolicyInputError, match="shapes differ"):
        SufficientStats.zeros(2, 1).merge(SufficientStats.zeros(3, 1))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_two_replicas_sharing_deltas_equal_one_policy_fed_everything(algorithm: str) -> None:
    """Replicas fed disjoint rewards, synced through deltas, decide like one policy fed all rewards."""
    alone, left, right = make(algorithm), make(algorithm), make(algorithm)
    store = SufficientStats.zeros(len(ARMS), alone.dimension)
    for replica, seed in ((left, 1), (right, 2)):
        feed(replica, np.random.default_rng(seed), 60)
        feed(alone, np.random.default_rng(seed), 60)
    for replica in (left, right):
        store.merge(replica.take_delta())
    for replica in (left, right):
        replica.replace(store)
        assert replica.stats().allclose(alone.stats())
    x = np.linspace(-1.0, 1.0, D) if alone.contextual else None
    expected = alone.probabilities(x)
    for replica in (left, right):
        assert np.allclose(replica.probabilities(x), expected, atol=1e-9)


def test_take_delta_resets_and_replace_keeps_pending_rewards() -> None:
    policy = make("EpsilonGreedy")
    policy.update(0, 1.0)
    delta = policy.take_delta()
    assert delta.n.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert policy.take_delta().is_zero()
    policy.update(1, 1.0)  # learned after the push: still pending
    shared = SufficientStats.zeros(4, 0)
    shared.merge(delta)
    shared.add(2, 0.5)  # another replica's reward
    policy.replace(shared)
    assert policy.stats().n.tolist() == [1.0, 1.0, 1.0, 0.0]
    assert policy.take_delta().n.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_replace_adds_a_foreign_delta_without_re_exporting_it() -> None:
    policy = make("UCB1")
    foreign = SufficientStats.zeros(4, 0)
    foreign.add(3, 1.0)
    version = policy.version
    policy.replace(policy.stats() + foreign)  # the shared total now holds another replica's reward
    assert policy.version > version
    assert policy.stats().n.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert policy.take_delta().is_zero()


def test_replace_rejects_stats_of_another_shape() -> None:
    with pytest.raises(PolicyInputError, match="this policy has arms=4, dimension=3") as caught:
        make("LinUCB").replace(SufficientStats.zeros(4, 2))
    assert caught.value.field == "stats"


def test_replace_rejects_states_the_policy_cannot_hold() -> None:
    policy = make("ThompsonSampling")
    policy.update(1, 1.0)
    before = policy.stats().to_flat()
    impossible = SufficientStats.zeros(4, 0)
    impossible.n[0], impossible.s[0] = 2.0, 3.0  # three successes in two pulls
    negative = SufficientStats.zeros(4, 0)
    negative.n[2] = -1.0
    broken = SufficientStats.zeros(4, 0)
    broken.s[3] = math.nan
    for stats, field in ((impossible, "stats.s"), (negative, "stats.n"), (broken, "stats.s")):
        with pytest.raises(PolicyInputError) as caught:
            policy.replace(stats)
        assert caught.value.field == field
    assert np.array_equal(policy.stats().to_flat(), before)
    assert policy.version == 1
