"""TPE that splits the trials into "good" and "rest" once per sample, not once per group,
and remembers what it derived from each finished trial.

With ``group=True`` (a family's conditional parameters form groups of their own: the
elastic-net ratio of a logistic regression, the percentile of univariate feature
selection), Optuna's TPE samples every group in turn, and each group starts by splitting
all the study's trials into the best ``gamma(n)`` and the rest: a loop over every trial, with
its constraints and pruned scores, ~0.9 ms at 240 trials, again for each group. The split
depends only on the trials, which do not change while one trial is being sampled, so
:class:`SharedSplitTPE` computes it for the first group and reuses it for the others. The
samples are the same, drawn in the same order (``tests/test_tpe_split.py`` compares them
with Optuna's own sampler; with lazy groups, below, where every trial uses every group).

A finished trial never changes, yet every sample re-reads every trial twice over: its
class and sort key in the split (state, constraints, value, last pruned score) and each
parameter's internal representation. Both are kept per finished trial (``_Finished``):
at 200 trials that was ~1.5 ms of Python loops a sample; a new or running trial is read
as Optuna reads it.

Optuna also samples every group before the trial's first parameter, the groups the trial
will not use included (the elastic-net ratio under an l2 penalty); here a group is sampled
when the trial first asks for one of its parameters (:class:`_LazyGroups`): the same
distribution per group, one TPE pass fewer per unused group.

It overrides ``TPESampler._sample`` with a copy of Optuna's (5.0) steps around the split,
and ``_get_internal_repr`` / the split with cached equivalents (same trials, same order);
where Optuna's private helpers are missing, :func:`tpe_sampler` returns Optuna's sampler.
"""

from __future__ import annotations

import contextlib
import json

import numpy as np
from optuna.samplers import TPESampler
from optuna.study import StudyDirection
from optuna.trial import TrialState

# Optuna's private TPE helpers, through tuner's one adapter (None where the installed Optuna
# lacks their shape: tpe_sampler then builds Optuna's own TPESampler)
from tuner.storage.optuna_adapter import (
    _RELATIVE_PARAMS_KEY, _SYSTEM_ATTR_MAX_LENGTH, _get_infeasible_trial_score, _get_pruned_trial_score,
    _split_trials, default_gamma)

_UNREAD = object()  # not computed yet


def _row(params: dict, space: list) -> tuple | None:
    """The internal values of ``space``'s parameters in ``params``; None if one is missing."""
    if not all(name in params for name, _ in space):
        return None
    return tuple(dist.to_internal_repr(params[name]) for name, dist in space)


class _Finished:
    """What the sampler derived from one finished trial: where it goes in the split, its sort
    key there, and its row of internal values for each search space asked for so far."""

    __slots__ = ("kind", "key", "params", "rows")

    def __init__(self, trial, study, sampler) -> None:
        if study._is_multi_objective():  # never split here (SharedSplitTPE._sample leaves it to Optuna)
            self.kind, self.key = "other", None
        elif (infeasible := _get_infeasible_trial_score(trial)) > 0:
            self.kind, self.key = "infeasible", infeasible
        elif trial.state == TrialState.COMPLETE:
            self.kind, self.key = "complete", trial.value
        elif trial.state == TrialState.PRUNED:
            self.kind, self.key = "pruned", _get_pruned_trial_score(trial, study)
        else:  # failed / waiting trials never reach the split (its callers filter states)
            self.kind, self.key = "other", None
        self.params = sampler._get_params(trial, study)
        self.rows: dict = {}  # columns of a search space (SharedSplitTPE._column) → _row


class SharedSplitTPE(TPESampler):
    """``TPESampler`` whose groups share one split of the trials per sample.

    ``lazy_groups``: sample a group's parameters when the trial first asks for one of them,
    not every group up front (see :class:`_LazyGroups`)."""

    _split: tuple | None = None  # (trial id, (good, rest)) while that trial's groups are sampled
    _sharing = False

    def __init__(self, *args, lazy_groups: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy_groups
        self._finished: dict = {}  # trial id → _Finished
        self._columns: dict = {}  # (parameter, distribution) → column number

    def sample_relative(self, study, trial, search_space):
        if self._lazy and self._group and not study._is_multi_objective():
            return self._lazy_relative(study, trial, search_space)
        with self._shared_split():
            return super().sample_relative(study, trial, search_space)

    @contextlib.contextmanager
    def _shared_split(self):
        self._sharing, self._split = True, None
        try:
            yield
        finally:
            self._sharing, self._split = False, None

    def _lazy_relative(self, study, trial, search_space) -> dict:
        # as TPESampler.sample_relative and _sample_relative: the same groups, and no relative
        # sample during the random start-up trials
        groups = []
        for sub_space in self._search_space_group.search_spaces:
            group = {name: d for name, d in sorted(sub_space.items()) if not d.single() and name in search_space}
            if group:
                groups.append(group)
        n_done = len(study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED),
                                       use_cache=True))
        if not groups or n_done < self._n_startup_trials:
            return {}
        return _LazyGroups(self, study, trial, groups)

    def _sample(self, study, trial, search_space):
        if not self._sharing or study._is_multi_objective():
            return super()._sample(study, trial, search_space)
        if self._split is None or self._split[0] != trial._trial_id:
            self._split = (trial._trial_id, self._split_trials(study, trial))
        below_trials, above_trials = self._split[1]
        # as Optuna's TPESampler._sample from here on
        mpe_below = self._build_parzen_estimator(study, search_space, below_trials, handle_below=True)
        mpe_above = self._build_parzen_estimator(study, search_space, above_trials, handle_below=False)
        samples_below = mpe_below.sample(self._rng.rng, self._n_ei_candidates)
        acq_func_vals = self._compute_acquisition_func(samples_below, mpe_below, mpe_above)
        ret = TPESampler._compare(samples_below, acq_func_vals)
        for param_name, dist in search_space.items():
            ret[param_name] = dist.to_external_repr(ret[param_name])
        return ret

    def _seen(self, trial, study) -> _Finished | None:
        """The kept reading of ``trial`` when it is finished (made on first sight), else None."""
        seen = self._finished.get(trial._trial_id)
        if seen is None and trial.state.is_finished():
            seen = self._finished[trial._trial_id] = _Finished(trial, study, self)
        return seen

    def _get_internal_repr(self, trials, search_space, study) -> dict[str, np.ndarray]:
        # as TPESampler._get_internal_repr: the values of the trials that have every parameter
        # of the space, in order; a finished trial's row is computed once per space
        space = list(search_space.items())
        signature = tuple(self._column(name, dist) for name, dist in space)
        rows = []
        for trial in trials:
            seen = self._seen(trial, study)
            if seen is None:  # running: its parameters may still be coming
                rows.append(_row(self._get_params(trial, study), space))
                continue
            row = seen.rows.get(signature, _UNREAD)
            if row is _UNREAD:
                row = seen.rows[signature] = _row(seen.params, space)
            rows.append(row)
        rows = [r for r in rows if r is not None]
        return {name: np.asarray([r[i] for r in rows]) for i, (name, _) in enumerate(space)}

    def _column(self, name: str, dist) -> int:
        """A small number for (parameter, distribution): hashing a distribution sorts its fields."""
        return self._columns.setdefault((name, dist), len(self._columns))

    def _split_trials(self, study, trial) -> tuple[list, list]:
        """Optuna's split of the study's trials (single objective) for sampling ``trial``."""
        if self._constant_liar:
            states = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING]
        else:
            states = [TrialState.COMPLETE, TrialState.PRUNED]
        trials = study._get_trials(deepcopy=False, states=states, use_cache=not self._constant_liar)
        if self._constant_liar:
            trials = [t for t in trials if trial.number != t.number]
        if self._gamma is None:
            self._gamma = default_gamma
        n = sum(t.state != TrialState.RUNNING for t in trials)  # running trials do not count
        return self._split_kept(study, trials, self._gamma(n))

    def _split_kept(self, study, trials, n_below: int) -> tuple[list, list]:
        """Optuna's ``_split_trials`` (single objective), with each finished trial's class and
        sort key read once; the same trials on each side, in the same order."""
        groups: dict[str, list] = {"complete": [], "pruned": [], "infeasible": [], "running": []}
        for t in trials:
            seen = self._seen(t, study)
            if seen is None:
                if t.state != TrialState.RUNNING:  # as Optuna: only these states come here
                    return _split_trials(study, trials, n_below)
                groups["running"].append((None, t))
            elif seen.kind == "other":
                return _split_trials(study, trials, n_below)
            else:
                groups[seen.kind].append((seen.key, t))
        below: list = []
        above: list = []
        maximize = study.direction == StudyDirection.MAXIMIZE
        for kind in ("complete", "pruned", "infeasible"):
            # sorted() is stable: ties keep the trials' order, as in Optuna
            ranked = sorted(groups[kind], key=lambda pair: pair[0], reverse=kind == "complete" and maximize)
            take = max(0, min(n_below, len(ranked)))
            below += [t for _, t in ranked[:take]]
            above += [t for _, t in ranked[take:]]
            n_below = max(0, n_below - take)
        above += [t for _, t in groups["running"]]
        below.sort(key=lambda t: t.number)
        above.sort(key=lambda t: t.number)
        return below, above


class _LazyGroups(dict):
    """A trial's relative parameters, each group sampled when the trial first asks for one
    of its parameters (Optuna's ``Trial`` asks ``name in params``, then ``params[name]``).

    Optuna samples every group of a grouped TPE before the trial's first parameter, also the
    groups the trial will not use (the elastic-net ratio of a logistic regression with an l2
    penalty, the degree of an RBF kernel): a full TPE pass each, ~1 ms at 200 trials. A group
    sampled here is what Optuna would sample for it, from the same split of the trials (made
    at the first group); only the random stream is consumed in the order of use. With
    ``constant_liar`` the parameters sampled so far are shared as Optuna shares them.
    """

    def __init__(self, sampler: SharedSplitTPE, study, trial, groups: list[dict]) -> None:
        super().__init__()
        self._sampler, self._study, self._trial, self._groups = sampler, study, trial, groups
        self._group_of = {name: i for i, group in enumerate(groups) for name in group}
        self._sampled: set[int] = set()

    def __contains__(self, name) -> bool:
        return name in self._group_of

    def __getitem__(self, name):
        i = self._group_of[name]
        if i not in self._sampled:
            self._sampled.add(i)
            sampler = self._sampler
            sampler._sharing = True
            try:
                self.update(sampler._sample(self._study, self._trial, self._groups[i]))
            finally:
                sampler._sharing = False
            if sampler._constant_liar:
                _share(self._study, self._trial, dict(self))
        return dict.__getitem__(self, name)

    def get(self, name, default=None):
        return self[name] if name in self else default


def _share(study, trial, params: dict) -> None:
    """Store ``params`` in the trial's system attributes as TPESampler.sample_relative does
    (other workers' samplers read a running trial's parameters there)."""
    text = json.dumps(params)
    for i in range(0, len(text), _SYSTEM_ATTR_MAX_LENGTH):
        study._storage.set_trial_system_attr(trial._trial_id, f"{_RELATIVE_PARAMS_KEY}:{i // _SYSTEM_ATTR_MAX_LENGTH}",
                                             text[i:i + _SYSTEM_ATTR_MAX_LENGTH])


def tpe_sampler(**kwargs) -> TPESampler:
    """A ``TPESampler(**kwargs)``: :class:`SharedSplitTPE` where Optuna's helpers are there."""
    helpers = (_split_trials, _get_infeasible_trial_score, _get_pruned_trial_score, _RELATIVE_PARAMS_KEY)
    usable = all(h is not None for h in helpers) and all(
        hasattr(TPESampler, name) for name in ("_build_parzen_estimator", "_get_internal_repr", "_get_params"))
    if not usable:
        kwargs.pop("lazy_groups", None)
        return TPESampler(**kwargs)
    return SharedSplitTPE(**kwargs)


__all__ = ["SharedSplitTPE", "tpe_sampler"]
