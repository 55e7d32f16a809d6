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


def _trial(state, **attrs):
    import optuna

    return optuna.trial.create_trial(state=state, user_attrs=attrs, value=0.5 if state.name == "COMPLETE" else None)


def test_a_family_set_aside_as_too_slow_says_so_in_the_table_in_the_words_of_the_note():
    """The note (`tuner run`: "note: F set aside: <aside_reason>") and the leaderboard status agree."""
    from optuna.trial import TrialState

    from tuner.execution.family_state import MAX_CAPPED_WITHOUT_RESULT, too_slow
    from tuner.results.leaderboard import family_row

    fam = _family()
    for _ in range(MAX_CAPPED_WITHOUT_RESULT):
        fam.record("stopped", 3.0, capped=True)
    assert not fam.active and fam.aside_reason() == too_slow(MAX_CAPPED_WITHOUT_RESULT)
    config = type("C", (), {"task": "binary", "metric": "roc_auc"})()
    trials = [_trial(TrialState.PRUNED, stopped="time cap: would take ~15s, more than 50% of the 26.4s budget"),
              _trial(TrialState.PRUNED, stopped="time cap: would take ~9s, more than 25% of the 26.4s budget")]
    row = family_row(config, "random_forest", trials, "roc_auc")
    assert row["status"] == f"set aside: {fam.aside_reason()}"
    assert row["trials"] == {"complete": 0, "pruned": 2, "failed": 0}
    # a pruned trial (behind the best) is no time cap: not set aside, no result yet
    row = family_row(config, "f", [_trial(TrialState.PRUNED, stopped="pruned after 1 fold(s)")], "roc_auc")
    assert row["status"] == "no completed trial yet"


def test_a_family_set_aside_for_failures_says_so_in_the_table_in_the_words_of_the_note():
    from optuna.trial import TrialState

    from tuner.results.leaderboard import family_row

    fam = _family()
    for _ in range(MAX_FAILURES_WITHOUT_RESULT):
        fam.record("failed", 0.1)
    config = type("C", (), {"task": "binary", "metric": "roc_auc"})()
    trials = [_trial(TrialState.FAIL, fail_reason="ValueError: no") for _ in range(MAX_FAILURES_WITHOUT_RESULT)]
    row = family_row(config, "svm", trials, "roc_auc")
    assert row["status"] == f"set aside: {fam.aside_reason()}; last error: ValueError: no"
    few = family_row(config, "svm", trials[:2], "roc_auc")  # not set aside (a trial target of 2, say): the count
    assert few["status"] == "all 2 trial(s) failed; last error: ValueError: no"


def test_a_familys_first_trial_may_take_a_larger_share_of_the_clock_until_a_cap_or_a_result():
    from tuner.search.trial import FIRST_TRIAL_SHARE, TRIAL_SHARE, trial_share

    fam = _family()
    assert trial_share(fam) == FIRST_TRIAL_SHARE > TRIAL_SHARE
    fam.record("stopped", 5.0, capped=True)  # its start point did not fit: the others get the usual share
    assert trial_share(fam) == TRIAL_SHARE
    done = _family(completed=1)
    assert trial_share(done) == TRIAL_SHARE
