"""The one rule that sets a family aside (tuner.execution.family_state)."""

from __future__ import annotations

import math

import pytest

from tuner.execution.family_state import MAX_FAILURES_IN_A_ROW, MAX_FAILURES_WITHOUT_RESULT, FamilyState


def _family(**kw) -> FamilyState:
    return FamilyState("f", study=None, space=None, remaining=math.inf, **kw)


@pytest.mark.parametrize("target, completed, limit", [
    (None, 0, MAX_FAILURES_WITHOUT_RESULT),  # no result yet, no trial count: the first trials
    (2, 0, 2),  # a target below the limit: that many
    (20, 0, MAX_FAILURES_WITHOUT_RESULT),
    (20, 1, MAX_FAILURES_IN_A_ROW),  # a family with a result gets far more rope
], ids=["clock", "small-target", "target", "has-result"])
def test_failures_in_a_row_set_a_family_aside_at_its_limit(target, completed, limit):
    fam = _family(target=target, completed=completed)
    for _ in range(limit - 1):
        fam.record("failed", 0.1)
    assert fam.active and fam.failures_in_a_row == limit - 1
    fam.record("failed", 0.1)
    assert not fam.active and fam.gave_up and fam.aside_reason() == f"{limit} failed trials in a row"


def test_a_complete_trial_resets_the_count_and_other_states_leave_it():
    fam = _family()
    for state in ("failed", "failed", "pruned", "stopped", "failed", "failed"):
        fam.record(state, 1.0)
    assert fam.failures_in_a_row == 4 and fam.active and fam.done_now == 6
    fam.record("complete", 2.0)
    assert fam.failures_in_a_row == 0 and fam.completed == 1 and fam.durations[-1] == 2.0


def test_a_reason_given_is_the_one_shown_and_finished_is_not_active():
    fam = _family()
    fam.set_aside("too slow for the time budget")
    assert not fam.active and fam.aside_reason() == "too slow for the time budget"
    done = _family(finished=True)
    assert not done.active and not done.gave_up


def test_note_top_keeps_the_best_few():
    fam = _family()
    assert [fam.note_top(v, greater=True) for v in (0.5, 0.7, 0.6, 0.4, 0.8)] == [True, True, True, False, True]
    assert fam.top == [0.8, 0.7, 0.6]
