"""Transport-free bandit policies: decide (arm + full probability vector), update, share additive state.

Start with :func:`build_policy`; see :mod:`croupier.runtime.policies.base` for the decision and state contracts.
"""

from .base import ArmPrior, ArmSummary, Decision, Eligible, Policy, PriorsInput
from .epsilon_greedy import EpsilonGreedy
from .errors import PolicyConfigError, PolicyError, PolicyInputError
from .factory import ALGORITHMS, DEFAULT_PARAMS, PARAMS_BLOCK, build_policy
from .linear import LinearPolicy, LinearThompson, LinUCB
from .softmax import Softmax
from .stats import FloatArray, SufficientStats
from .thompson import Likelihood, ThompsonSampling
from .ucb import UCB1

__all__ = [
    "ALGORITHMS",
    "DEFAULT_PARAMS",
    "PARAMS_BLOCK",
    "UCB1",
    "ArmPrior",
    "ArmSummary",
    "Decision",
    "Eligible",
    "EpsilonGreedy",
    "FloatArray",
    "Likelihood",
    "LinUCB",
    "LinearPolicy",
    "LinearThompson",
    "Policy",
    "PolicyConfigError",
    "PolicyError",
    "PolicyInputError",
    "PriorsInput",
    "Softmax",
    "SufficientStats",
    "ThompsonSampling",
    "build_policy",
]
