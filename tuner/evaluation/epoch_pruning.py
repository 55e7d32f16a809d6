"""Per-epoch pruning for families that train by epochs (the Keras MLP).

Fold-level pruning (``tuner.evaluation.pruning``) needs whole folds; a hopeless network
should stop sooner. On the first fold of a trial the estimator calls an epoch callback
with ``logs["pruning_value"]`` (lower is better, comparable across trials of a run).
This is the median rule of Optuna's ``MedianPruner`` applied to those curves: after a
warm-up, a trial whose best value so far is worse than the median of earlier completed
trials' best values at the same epoch is stopped. The curve of every trial is stored in
its user attribute ``epoch_curve`` so that any process (another worker) can compare.
"""

from __future__ import annotations

import functools

import numpy as np
import optuna
from optuna.trial import TrialState

CURVE_ATTR = "epoch_curve"
WARMUP_EPOCHS = 5
MIN_REFERENCE_TRIALS = 3


def accepts_epoch_callback(estimator) -> bool:
    """True when the pipeline's final model takes ``fit(..., epoch_callback=)``."""
    inner = getattr(estimator, "regressor", estimator)  # TransformedTargetRegressor
    steps = getattr(inner, "steps", None)
    model = steps[-1][1] if steps else inner
    return _fit_takes_epoch_callback(type(model))


@functools.lru_cache(maxsize=256)
def _fit_takes_epoch_callback(model_class: type) -> bool:
    """Cached per class: ``inspect.signature`` is slow next to a trial's other bookkeeping,
    and every trial asks."""
    import inspect

    try:
        return "epoch_callback" in inspect.signature(model_class.fit).parameters
    except (TypeError, ValueError, AttributeError):
        return False


def _best_so_far(curve: list[float], epoch: int) -> float:
    seen = curve[: epoch + 1]
    return float(np.min(seen)) if seen else float("inf")


class EpochPruner:
    """Callable given to ``fit(epoch_callback=...)`` on the first fold of a trial.

    The earlier trials' curves are read once, when it is made: a curve stored meanwhile counts
    from the next trial on."""

    def __init__(self, study: optuna.Study, trial: optuna.Trial):
        self.trial = trial
        self.curve: list[float] = []
        self.pruned_at: int | None = None
        self._references = [
            [float("inf") if v is None else float(v) for v in t.user_attrs[CURVE_ATTR]]
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get(CURVE_ATTR)
        ]

    def __call__(self, epoch: int, logs: dict) -> None:
        value = logs.get("pruning_value")
        if value is None or not np.isfinite(value):
            value = float("inf")
        self.curve.append(float(value))
        if epoch + 1 < WARMUP_EPOCHS or len(self._references) < MIN_REFERENCE_TRIALS:
            return
        # an early-stopped reference keeps its best value for the epochs it did not run
        median = float(np.median([_best_so_far(c, epoch) for c in self._references]))
        if _best_so_far(self.curve, epoch) > median:
            self.pruned_at = epoch
            self.save()
            raise optuna.TrialPruned(f"pruned at epoch {epoch + 1}: validation loss above the median of earlier trials")

    def save(self) -> None:
        self.trial.set_user_attr(CURVE_ATTR, [round(v, 6) if np.isfinite(v) else None for v in self.curve])
