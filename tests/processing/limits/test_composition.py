"""The pure parts of limit composition: which units are above a scope, what binds, valid sets."""

from __future__ import annotations

import pytest

from processing.limits.composition import (
    BindingLimit,
    DuplicateLimit,
    LimitSpec,
    ScopeRef,
    SourcedLimit,
    binding_limits,
    check_limit_set,
    describe_amount,
    parent_unit_ids,
)
from processing.limits.service import InvalidLimit

CARD = ScopeRef("card", 7, "7005 12•• •••• 1234")
ROOT = ScopeRef("org_unit", 1, "Volga")


def test_the_units_above_a_card_include_its_own_unit_and_a_units_exclude_itself():
    assert parent_unit_ids("card", 7, "/1/5/9/") == [1, 5, 9]
    assert parent_unit_ids("org_unit", 9, "/1/5/9/") == [1, 5]
    assert parent_unit_ids("org_unit", 1, "/1/") == []


def test_a_longer_periods_remainder_binds_a_shorter_period():
    limits = [
        SourcedLimit(CARD, "amount", "transaction", 200_000, 0, 200_000),
        SourcedLimit(CARD, "amount", "day", 300_000, 250_000, 50_000),
        SourcedLimit(ROOT, "amount", "week", 1_000_000, 990_000, 10_000),
        SourcedLimit(ROOT, "volume", "month", 100_000, 0, 100_000),
    ]
    assert binding_limits(limits) == [
        BindingLimit("amount", "transaction", 10_000, limits[2]),
        BindingLimit("amount", "day", 10_000, limits[2]),
        BindingLimit("amount", "week", 10_000, limits[2]),
        BindingLimit("volume", "month", 100_000, limits[3]),
    ]


def test_a_limit_set_is_sorted_and_refuses_duplicates_and_nonsense():
    assert check_limit_set([LimitSpec("count", "day", 3), LimitSpec("amount", "week", 1),
                            LimitSpec("amount", "transaction", 2)]) == [
        LimitSpec("amount", "transaction", 2), LimitSpec("amount", "week", 1), LimitSpec("count", "day", 3)]
    with pytest.raises(DuplicateLimit):
        check_limit_set([LimitSpec("amount", "day", 1), LimitSpec("amount", "day", 2)])
    for bad in (LimitSpec("amount", "day", -1), LimitSpec("count", "transaction", 1), LimitSpec("litres", "day", 1)):
        with pytest.raises(InvalidLimit):
            check_limit_set([bad])


def test_values_read_like_money_litres_and_purchases():
    assert describe_amount("amount", 5_000_000, "RUB") == "50 000.00 RUB"
    assert describe_amount("volume", 40_500, "RUB") == "40.50 l"
    assert describe_amount("count", 1, "RUB") == "1 purchase"
