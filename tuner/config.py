"""RunConfig: every knob of a run, validated once, stored with the run.

Also the checks of the options that need nothing but the registry of families
(``--models``, ``--trials`` / ``--timeout``). Every layer of tuner reads a RunConfig, so this
module imports only ``tuner.errors`` and the family registry (``search_spaces``); the metric is
checked where a config is made (``tuner.search.run_setup.make_config``, with
``tuner.evaluation.metrics.check_metric``).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import search_spaces
from tuner.errors import TunerError


@dataclass
class RunConfig:
    """A run's options and what was learnt from its data; stored as JSON with the run, so
    every worker and every later command (leaderboard, export) sees the same run."""

    run: str
    target: str
    task: str
    metric: str
    direction: str
    families: list[str]
    cv: int = 5
    cv_repeats: int = 1
    seed: int = 0
    test_size: float = 0.0  # fraction held out before tuning (0: none); see tuner.data.dataset.split_holdout
    groups: str = ""  # --groups: the column whose groups folds keep apart (tuner.evaluation.folds)
    time_column: str = ""  # --time-column: the column that orders the rows; folds go forward
    gap: int = 0  # --gap: rows left out between past and future (time column only)
    n_groups: int = 0  # groups in the rows tuned on
    weights: str = ""  # --weights: the column of row weights, used in every fit and metric
    threshold_metric: str = ""  # --threshold-metric: the label metric a binary model's cut serves (tuner.evaluation.threshold)
    space: dict = field(default_factory=dict)  # --space: checked per-family overrides (tuner.search.space_file)
    plugins: dict = field(default_factory=dict)  # plug-in families of the run: name -> "module:ATTRIBUTE"
    source: str = ""
    fingerprint: str = ""
    task_reason: str = ""
    schema: dict = field(default_factory=dict)
    classes: list = field(default_factory=list)
    n_rows: int = 0
    n_features: int = 0
    class_imbalance: float = 1.0
    y_min: float = 0.0
    created_at: str = ""
    tuner_version: str = ""

    def __post_init__(self) -> None:
        # a stored run's plug-in families are known to every process that reads its config
        # (workers, export, leaderboard); imported only when used
        search_spaces.add_families(self.plugins)

    def describe_folds(self) -> str:
        """'5-fold CV × 2 repeats', "5-fold group CV over 40 groups of 'patient'", "5 forward folds by 'date' ..."."""
        if self.time_column:
            gap = f", gap {self.gap} rows" if self.gap else ""
            return f"{self.cv} forward folds by {self.time_column!r} (expanding window{gap})"
        reps = f" × {self.cv_repeats} repeats" if self.cv_repeats > 1 else ""
        if self.groups:
            return f"{self.cv}-fold group CV{reps} over {self.n_groups} groups of {self.groups!r}"
        return f"{self.cv}-fold CV{reps}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def now_iso() -> str:
    """The current UTC time to the second, as stored in runs and reports."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def resolve_families(models: list[str] | None, task: str) -> list[str]:
    """Validate ``--models`` against the registry and the task; default to every family of the task."""
    if not models:
        return search_spaces.default_family_names(task)
    names = []
    for name in models:
        try:
            if ":" in name:  # a plug-in given as module:ATTRIBUTE
                name = search_spaces.register(name)
            space = search_spaces.get_space(name)
        except KeyError as exc:
            raise TunerError(str(exc.args[0])) from None
        except search_spaces.PluginError as exc:
            raise TunerError(str(exc)) from None
        missing = [m for m in space.requires if importlib.util.find_spec(m) is None]
        if missing:
            raise TunerError(f"model family {name!r} needs {', '.join(missing)}: pip install 'tuner[{space.extra}]'")
        if not space.supports(task):
            valid = ", ".join(s.name for s in search_spaces.available_spaces(task))
            raise TunerError(f"model family {name!r} does not support {task}; for {task} use: {valid}")
        if name not in names:
            names.append(name)
    return names


def plugin_refs(families: list[str]) -> dict[str, str]:
    """The run's plug-in families and where they come from (stored with the run)."""
    return {name: search_spaces.FAMILIES[name] for name in families
            if search_spaces.is_plugin(name) and name in search_spaces.FAMILIES}


def parse_models(text: str | None) -> list[str] | None:
    """``--models a,b`` as a list (None when not given: every family of the task)."""
    if not text:
        return None
    return [m.strip() for m in text.split(",") if m.strip()]


def validate_budget(trials: int | None, timeout: float | None,
                    trial_timeout: float | None = None) -> tuple[int | None, float | None]:
    """Refuse a budget that cannot run (no trial, no time); returns ``(trials, timeout)``."""
    if trial_timeout is not None and not trial_timeout > 0:
        raise TunerError(f"--trial-timeout must be a positive number of seconds (got {trial_timeout:g})")
    if trials is not None and trials < 1:
        raise TunerError(f"--trials must be at least 1 (got {trials})")
    if timeout is not None and timeout <= 0:
        raise TunerError(f"--timeout must be a positive number of seconds (got {timeout:g})")
    return trials, timeout

