"""``--space FILE.toml``: narrow, fix or restrict what a family searches, without editing search_spaces/.

    [xgboost]
    n_estimators = {low = 100, high = 300}   # a narrower range (inside the family's own)
    max_depth = 6                            # a fixed value
    prep_poly = false                        # preprocessing choices the same way
    [svm]
    kernel = ["rbf"]                         # a subset of the choices
    [logistic_regression.defaults]           # the first (enqueued) configuration
    C = 0.5

A family's parameters and their ranges are found by running its ``suggest`` (and the
preprocessing's) against a recording trial, once per choice, so conditional parameters are
seen too. Every key is checked against them before the run is written: an unknown family or
parameter, a range outside the family's, a value of the wrong type exit 2 naming the key and the
valid values. At trial time ``wrap`` stands between the trial and the space: a fixed value is a
one-choice categorical (so it is in ``trial.params`` like any other), a range or a subset is
suggested as such. The enqueued defaults and portfolio configurations are moved inside the
narrowed space (``project``). The checked overrides are stored with the run (``RunConfig.space``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

import search_spaces
from tuner.errors import TunerError

MAX_PASSES = 8  # recording passes: each picks the next choice of every categorical


def read(space) -> dict:
    """The overrides of ``--space FILE.toml`` (or a dict given to ``tune(space=...)``), unchecked."""
    if space is None:
        return {}
    if isinstance(space, dict):
        return space
    if not isinstance(space, (str, Path)):
        raise TunerError(f"space must be a path to a TOML file or a dict of per-family overrides "
                         f"(got a {type(space).__name__})")
    path = Path(space)
    if not path.is_file():
        raise TunerError(f"--space {space}: no such file; give a TOML file of per-family overrides")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TunerError(f"--space {space} is not valid TOML: {exc}") from None


class _Recorder:
    """A trial that records every distribution asked for and picks choice ``pick`` of each categorical."""

    def __init__(self, pick: int, seen: dict):
        self.pick, self.seen, self.params = pick, seen, {}

    def _record(self, name, distribution, value):
        self.seen.setdefault(name, distribution)
        self.params[name] = value
        return value

    def suggest_float(self, name, low, high, *, step=None, log=False):
        return self._record(name, FloatDistribution(low, high, step=step, log=log), high if self.pick % 2 else low)

    def suggest_int(self, name, low, high, *, step=1, log=False):
        return self._record(name, IntDistribution(low, high, step=step, log=log), high if self.pick % 2 else low)

    def suggest_categorical(self, name, choices):
        return self._record(name, CategoricalDistribution(choices), list(choices)[self.pick % len(choices)])


def distributions(family: str, ctx, prep_suggest=None) -> dict:
    """Every parameter ``family`` may suggest (and the preprocessing through ``prep_suggest(trial)``)."""
    space = search_spaces.get_space(family)
    seen: dict = {}
    for pick in range(MAX_PASSES):
        recorder = _Recorder(pick, seen)
        if prep_suggest is not None:
            prep_suggest(recorder)
        space.suggest(recorder, ctx)
    return seen


def check(overrides: dict, families: list[str], distributions_of) -> dict:
    """The overrides checked against each family's ``distributions_of(family)``, normalised to
    ``{family: {"params": {name: {"fixed": v} | {"low", "high"} | {"choices": [...]}}, "defaults": {...}}}``."""
    known = list(search_spaces.FAMILIES)
    out = {}
    for family, table in overrides.items():
        if family not in known:
            raise TunerError(f"--space: unknown family [{family}]; families are: {', '.join(known)}")
        if family not in families:
            raise TunerError(f"--space: [{family}] is not searched in this run (its families: {', '.join(families)}); "
                             "drop the table or add the family with --models")
        if not isinstance(table, dict):
            raise TunerError(f"--space: [{family}] must be a table of parameters")
        dists = distributions_of(family)
        params = {}
        for name, spec in table.items():
            if name == "defaults":
                continue
            params[name] = _check_param(family, name, spec, dists)
        defaults = {}
        for name, value in (table.get("defaults") or {}).items():
            narrowed = _narrow(dists[name], params[name]) if name in dists and name in params else dists.get(name)
            if narrowed is None:
                raise TunerError(f"--space: [{family}.defaults] {name}: {family} has no parameter {name!r}; "
                                 f"its parameters: {', '.join(dists)}")
            defaults[name] = _check_value(family, f"defaults.{name}", value, narrowed)
        out[family] = {"params": params, "defaults": defaults}
    return out


def _check_param(family: str, name: str, spec, dists: dict) -> dict:
    if name not in dists:
        raise TunerError(f"--space: [{family}] {name}: {family} has no parameter {name!r} here; "
                         f"its parameters: {', '.join(dists)}")
    dist = dists[name]
    key = f"[{family}] {name}"
    if isinstance(dist, CategoricalDistribution):
        if isinstance(spec, dict):
            raise TunerError(f"--space: {key} is a choice among {_choices(dist)}: give one value or a list of them")
        chosen = spec if isinstance(spec, list) else [spec]
        if not chosen:
            raise TunerError(f"--space: {key}: an empty list leaves nothing to try; valid: {_choices(dist)}")
        bad = [v for v in chosen if v not in dist.choices]
        if bad:
            raise TunerError(f"--space: {key}: {bad[0]!r} is not one of its choices {_choices(dist)}")
        return {"fixed": chosen[0]} if len(chosen) == 1 else {"choices": chosen}
    if isinstance(spec, list):
        raise TunerError(f"--space: {key} is a {_range(dist)}: give a value or {{low = ..., high = ...}}, not a list")
    if isinstance(spec, dict):
        unknown = set(spec) - {"low", "high"}
        if unknown or not {"low", "high"} <= set(spec):
            raise TunerError(f"--space: {key}: a range is {{low = ..., high = ...}} (got keys {', '.join(sorted(spec))})")
        low = _check_value(None, key + ".low", spec["low"], dist, prefix=False)
        high = _check_value(None, key + ".high", spec["high"], dist, prefix=False)
        if low > high:
            raise TunerError(f"--space: {key}: low {low} is above high {high}")
        return {"low": low, "high": high}
    return {"fixed": _check_value(family, name, spec, dist)}


def _check_value(family, name: str, value, dist, *, prefix: bool = True):
    key = f"[{family}] {name}" if prefix else name
    if isinstance(dist, CategoricalDistribution):
        if value not in dist.choices:
            raise TunerError(f"--space: {key}: {value!r} is not one of {_choices(dist)}")
        return value
    integer = isinstance(dist, IntDistribution)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        raise TunerError(f"--space: {key}: {value!r} is not {'a whole number' if integer else 'a number'}; "
                         f"the family takes a {_range(dist)}")
    if not (dist.low <= value <= dist.high) or (isinstance(value, float) and not math.isfinite(value)):
        raise TunerError(f"--space: {key}: {value!r} is outside the family's {_range(dist)}")
    return int(value) if integer else float(value)


def _narrow(dist, spec: dict):
    """The distribution after an override (for checking the defaults against it)."""
    if "fixed" in spec:
        return CategoricalDistribution([spec["fixed"]])
    if "choices" in spec:
        return CategoricalDistribution(spec["choices"])
    kind = IntDistribution if isinstance(dist, IntDistribution) else FloatDistribution
    step = dist.step if dist.step is not None and (spec["high"] - spec["low"]) % dist.step == 0 else None
    if kind is IntDistribution:
        return IntDistribution(spec["low"], spec["high"], log=dist.log, step=step or 1)
    return FloatDistribution(spec["low"], spec["high"], log=dist.log, step=step)


def _choices(dist) -> str:
    return ", ".join(repr(c) for c in dist.choices)


def _range(dist) -> str:
    kind = "whole number" if isinstance(dist, IntDistribution) else "number"
    return f"{'log-' if dist.log else ''}{kind} range {dist.low} – {dist.high}"


class _Overridden:
    """A trial whose suggestions follow one family's checked overrides; everything else is the trial's."""

    def __init__(self, trial, params: dict):
        self._trial, self._params = trial, params

    def __getattr__(self, name):
        return getattr(self._trial, name)

    def suggest_float(self, name, low, high, *, step=None, log=False):
        spec = self._params.get(name)
        if spec is None:
            return self._trial.suggest_float(name, low, high, step=step, log=log)
        if "fixed" in spec:
            return self._trial.suggest_categorical(name, [spec["fixed"]])
        step = step if step is not None and (spec["high"] - spec["low"]) % step == 0 else None
        return self._trial.suggest_float(name, spec["low"], spec["high"], step=step, log=log)

    def suggest_int(self, name, low, high, *, step=1, log=False):
        spec = self._params.get(name)
        if spec is None:
            return self._trial.suggest_int(name, low, high, step=step, log=log)
        if "fixed" in spec:
            return self._trial.suggest_categorical(name, [spec["fixed"]])
        step = step if (spec["high"] - spec["low"]) % step == 0 else 1
        return self._trial.suggest_int(name, spec["low"], spec["high"], step=step, log=log)

    def suggest_categorical(self, name, choices):
        spec = self._params.get(name)
        if spec is None:
            return self._trial.suggest_categorical(name, choices)
        return self._trial.suggest_categorical(name, [spec["fixed"]] if "fixed" in spec else spec["choices"])


def wrap(trial, family_overrides: dict | None):
    """``trial`` as the family's space and the preprocessing should see it under the overrides."""
    if not family_overrides or not family_overrides.get("params"):
        return trial
    return _Overridden(trial, family_overrides["params"])


def project(start: dict, family_overrides: dict | None) -> dict:
    """An enqueued configuration moved inside the overridden space, then the file's own defaults."""
    if not family_overrides:
        return start
    out = dict(start)
    for name, spec in family_overrides.get("params", {}).items():
        if name not in out:
            continue
        if "fixed" in spec:
            out[name] = spec["fixed"]
        elif "choices" in spec:
            out[name] = out[name] if out[name] in spec["choices"] else spec["choices"][0]
        else:
            out[name] = min(max(out[name], spec["low"]), spec["high"])
    out.update(family_overrides.get("defaults", {}))
    return out



# -- describe agrees with suggest ------------------------------------------------------------------
_RANGE = re.compile(r"^(log-)?(float|int) ([-+0-9.e]+) – ([-+0-9.e]+)")


def describe_contexts():
    """The problems a family's space is recorded on: every task, small to large, balanced and not."""
    from search_spaces._base import SpaceContext

    for task, k in (("binary", 2), ("multiclass", 3), ("regression", 0)):
        for rows in (200, 3_000, 20_000, 60_000, 200_000):
            for imbalance in ((1.0, 20.0) if k else (1.0,)):
                yield SpaceContext(task=task, n_rows=rows, n_features=10, n_classes=k, class_imbalance=imbalance)


def describe_problems(family: str) -> list[str]:
    """Where ``family``'s ``describe`` disagrees with what its ``suggest`` asks for, over
    ``describe_contexts``; empty when they agree. A range is written ``[log-]float|int LOW – HIGH ...``
    with the very bounds suggested, a categorical names every choice, a parameter that is not
    searched starts ``fixed``. For plug-in authors too: ``assert not describe_problems("my_family")``."""
    space = search_spaces.get_space(family)
    seen: dict[str, list] = {}
    for ctx in describe_contexts():
        if space.supports(ctx.task):
            for name, dist in distributions(family, ctx).items():
                seen.setdefault(name, []).append(dist)
    problems = []
    for name, dists in seen.items():
        text = space.describe.get(name)
        if text is None:
            problems.append(f"{family}: {name} is suggested but not in describe")
            continue
        for dist in dists:
            if isinstance(dist, CategoricalDistribution):
                missing = [c for c in dist.choices if str(c).lower() not in text.lower()]
                if missing:
                    problems.append(f"{family}: {name} may be {', '.join(map(str, missing))}; describe says {text!r}")
                continue
            m = _RANGE.match(text)
            log, is_int = (bool(m.group(1)), m.group(2) == "int") if m else (None, None)
            if not m or log != dist.log or is_int != isinstance(dist, IntDistribution) or (
                    float(m.group(3)), float(m.group(4))) != (dist.low, dist.high):
                kind = ("log-" if dist.log else "") + ("int" if isinstance(dist, IntDistribution) else "float")
                problems.append(f"{family}: {name} is suggested as {kind} {dist.low:g} – {dist.high:g}; "
                                f"describe says {text!r}")
    for name, text in space.describe.items():
        if name not in seen and not text.startswith("fixed"):
            problems.append(f"{family}: describe names {name}, which is never suggested (start its text with "
                            "'fixed' if it is not searched)")
    return list(dict.fromkeys(problems))


__all__ = ["describe_problems", "describe_contexts", "read", "check", "distributions", "wrap", "project"]
