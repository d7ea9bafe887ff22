"""Peering settings reach Kopf: the name, scope, lifetime, and a priority that puts the oldest replica in charge."""

from __future__ import annotations

import kopf
import pytest

from croupier.operator.settings import OperatorSettings
from croupier.operator.startup import configure_kopf, seniority_priority

pytestmark = pytest.mark.unit


def _configured(**values: object) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings.model_validate(values))
    return settings


def test_without_a_peering_name_the_operator_is_standalone() -> None:
    settings = _configured()
    assert settings.peering.standalone is True


def test_a_peering_name_turns_mandatory_clusterwide_peering_on_with_the_lifetime() -> None:
    settings = _configured(peering_name="croupier-operator", peering_lifetime_seconds=15)
    peering = settings.peering
    assert (peering.standalone, peering.mandatory, peering.clusterwide) == (False, True, True)
    assert (peering.name, peering.lifetime, peering.stealth) == ("croupier-operator", 15, True)


def test_a_fixed_priority_is_used_as_given() -> None:
    assert _configured(peering_name="p", peering_priority=7).peering.priority == 7


def test_seniority_the_earlier_start_has_the_higher_priority() -> None:
    older, newer = seniority_priority(1_800_000_000.000), seniority_priority(1_800_000_000.001)
    assert older > newer
    # Within JSON's exact integer range (the peering object's status carries it).
    assert abs(older) < 2**53


def test_seniority_breaks_ties_of_one_millisecond() -> None:
    assert len({seniority_priority(1_800_000_000.0) for _ in range(50)}) > 1


def test_lifetime_below_ten_seconds_is_refused() -> None:
    with pytest.raises(ValueError, match="peering_lifetime_seconds"):
        OperatorSettings.model_validate({"peering_lifetime_seconds": 5})
