"""TunerClassifier / TunerRegressor: a whole tuner run as one scikit-learn estimator.

``fit`` runs ``tuner.tune`` on (X, y), then refits the winner on every row in memory
(``tuner.best_model``); ``predict`` and friends go through that model, so new rows are checked
and coerced exactly as ``tuner.load(...).predict`` does. The run lives in a temporary SQLite
storage deleted at the end of ``fit`` unless ``storage=`` is given (then it stays, under
``run=`` or a fresh name per fit, so that ``cross_val_score`` never mixes two fits' data).
Invalid input raises ``ValueError`` (tuner's one-line message), as scikit-learn expects.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted, column_or_1d

from tuner.data.frames import as_pandas
from tuner.errors import TunerError

TARGET, GROUPS, WEIGHTS = "__tuner_target__", "__tuner_groups__", "__tuner_weight__"
_Self = TypeVar("_Self", bound="_TunerEstimator")


class _TunerEstimator(BaseEstimator):
    """What both estimators share; ``_task`` is the task given to ``tuner.tune``."""

    _task = "auto"

    def __init__(self, *, metric: str | None = None, models: list[str] | str | None = None,
                 trials: int | None = None, timeout: float | None = None, cv: int | None = None,
                 cv_repeats: int | None = None, seed: int | None = None, n_jobs: int | None = None,
                 storage: str | None = None, run: str | None = None, test_size: float | None = None,
                 trial_timeout: float | None = None, progress: bool = False):
        self.metric = metric
        self.models = models
        self.trials = trials
        self.timeout = timeout
        self.cv = cv
        self.cv_repeats = cv_repeats
        self.seed = seed
        self.n_jobs = n_jobs
        self.storage = storage
        self.run = run
        self.test_size = test_size
        self.trial_timeout = trial_timeout
        self.progress = progress

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # imputed inside every fold
        return tags

    # -- fit ---------------------------------------------------------------------------------
    def fit(self: _Self, X: object, y: object, *, groups: object = None, sample_weight: object = None) -> _Self:
        """Tune every family (or ``models``) on (X, y) and refit the winner on all rows.

        ``groups``: each row's group (folds keep groups apart, as ``--groups``);
        ``sample_weight``: each row's weight in every fit and metric (as ``--weights``).
        """
        return self._tune(self._features(X, fitting=True), self._check_target(y), groups, sample_weight)

    def _tune(self: _Self, frame: pd.DataFrame, y: np.ndarray, groups: object, sample_weight: object) -> _Self:
        """``fit`` once X and y are checked: ``frame`` is X as the run's table, ``y`` the target."""
        from tuner import api
        from tuner.storage.runs import open_storage, require_config

        check_consistent_length(frame, y)
        frame[TARGET] = y
        options = {}
        if groups is not None:
            groups = column_or_1d(groups, warn=True)
            check_consistent_length(frame, groups)
            frame[GROUPS], options["groups"] = groups, GROUPS
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=float).ravel()
            check_consistent_length(frame, weights)
            frame[WEIGHTS], options["weights"] = weights, WEIGHTS
        temporary = None if self.storage else tempfile.mkdtemp(prefix="tuner-estimator-")
        url = self.storage or f"sqlite:///{Path(temporary) / 'tuner.db'}"
        run = self.run or (f"estimator-{uuid.uuid4().hex[:8]}" if self.storage else "estimator")
        shown, done = (_Shown(self, len(frame)) if self.progress is True else None), False
        try:
            self.leaderboard_ = api.tune(
                frame, target=TARGET, task=self._task, metric=self.metric, models=self.models, trials=self.trials,
                timeout=self.timeout, cv=self.cv, cv_repeats=self.cv_repeats, seed=self.seed, storage=url, run=run,
                n_jobs=self.n_jobs, test_size=self.test_size, trial_timeout=self.trial_timeout,
                progress=self.progress, **options)
            if shown is not None:
                shown.winner(url, run)
            self.model_ = api.best_model(run=run, storage=url, data=frame, n_jobs=self.n_jobs)
            store = open_storage(url, create=False)
            self._describe(store, require_config(store, run))
            done = True
        except TunerError as exc:
            raise ValueError(str(exc)) from exc
        finally:
            if shown is not None:
                shown.close(self.best_model_name_ if done else None)
            if temporary is not None:
                shutil.rmtree(temporary, ignore_errors=True)
        self.run_ = run
        self.storage_ = self.storage  # None: the temporary storage is gone
        return self

    def _describe(self, store, config) -> None:
        from tuner.estimators.cv_results import cv_results
        from tuner.evaluation.metrics import get_metric

        card = self.model_.card
        self.best_estimator_ = self.model_.pipeline
        self.best_model_name_ = card["family"]
        self.best_params_ = dict(card["params"])
        self.metric_ = config.metric
        from tuner.results import leaderboard as lb

        blended = [r for r in lb.build(store, config) if "members" in r]
        self.cv_results_ = cv_results(store, config, blended[0] if blended else None)
        number = card["leaderboard_row"]["trial_number"]
        winner = (self.cv_results_["model"] == self.best_model_name_) & (
            self.cv_results_["trial_number"] == (-1 if number is None else number))
        self.best_index_ = int(np.flatnonzero(winner)[0])
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        self.greater_is_better_ = get_metric(config.metric).greater_is_better

    # -- inputs --------------------------------------------------------------------------------
    def _features(self, X, *, fitting: bool = False) -> pd.DataFrame:
        """X as a DataFrame of the columns seen in ``fit`` (NumPy arrays: columns x0, x1, ...)."""
        X = as_pandas(X)
        if isinstance(X, pd.DataFrame):
            frame = X.copy()
            named = all(isinstance(c, str) for c in frame.columns)
            if not named:
                frame.columns = [f"x{i}" for i in range(frame.shape[1])]
        else:  # an object array of numbers gives number columns, not categories
            frame = pd.DataFrame(check_array(X, dtype=None, ensure_all_finite="allow-nan")).infer_objects()
            frame.columns = [f"x{i}" for i in range(frame.shape[1])]
            named = False
        for column in frame.columns[frame.dtypes == object]:  # noqa: E721 (a pandas column-wise comparison)
            nested = frame[column].map(lambda v: v is not None and not pd.api.types.is_scalar(v))
            if nested.any():
                row = int(np.flatnonzero(nested.to_numpy())[0])
                raise TypeError(f"X[{row}, {column!r}] is a {type(frame[column].iloc[row]).__name__}: every cell's "
                                "argument must be a string or a number (or missing)")
        if fitting:
            if frame.shape[1] == 0:
                raise ValueError("X has 0 features; at least one is required")
            if frame.shape[0] < 2:
                raise ValueError(f"X has {frame.shape[0]} sample(s) (n_samples={frame.shape[0]}); tuning needs at "
                                 "least 10 rows to cross-validate")
            self.n_features_in_ = frame.shape[1]
            if named:
                self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            for reserved in (TARGET, GROUPS, WEIGHTS):
                if reserved in frame.columns:
                    raise ValueError(f"X has a column named {reserved!r}, which tuner uses itself; rename it")
        elif frame.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {frame.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        return frame.reset_index(drop=True)

    def _check_target(self, y) -> np.ndarray:
        y = as_pandas(y)
        if isinstance(y, pd.DataFrame):
            y = y.to_numpy()
        return column_or_1d(y, warn=True)

    # -- predict ---------------------------------------------------------------------------------
    def predict(self, X: object) -> np.ndarray:
        """Predicted labels (classification) or values (regression)."""
        check_is_fitted(self, "model_")
        return np.asarray(self.model_.predict(self._features(X)))


class _Shown:
    """``progress=True``: a line naming the fit before the trials (which ``tuner.tune`` shows family by
    family, as ``tuner run`` does), the step that gets the winner, with its estimate, and a closing line."""

    def __init__(self, estimator: _TunerEstimator, rows: int):
        from tuner.cli.activity import Activity

        self.name, self.rows = type(estimator).__name__, rows
        self.started = time.monotonic()
        self.activity = Activity(enabled=True)
        self.activity.console.print(f"{self.name}.fit: tuning on {rows} rows × {estimator.n_features_in_} columns",
                                    markup=False)

    def winner(self, url: str, run: str) -> None:
        from tuner.deploy.export import kept_for
        from tuner.results.importance import fit_estimate_s

        config, row, kept, _ = kept_for(run=run, storage=url, family=None)
        if kept is not None:
            self.activity(f"{self.name}: loading the run's final model ({row['model']}) and its trials", None)
        else:
            self.activity(f"{self.name}: refitting the winner, {row['model']}, on all {self.rows} rows",
                          fit_estimate_s(config, row, whole=True))

    def close(self, family: str | None) -> None:
        self.activity.close(failed=family is None)
        if family is not None:
            self.activity.console.print(f"{self.name}.fit: done in {time.monotonic() - self.started:.1f}s; "
                                        f"the winner: {family}", markup=False)


class TunerClassifier(ClassifierMixin, _TunerEstimator):
    """Tune and compare tuner's classification families on (X, y); predict with the winner.

    Constructor arguments are ``tuner.tune``'s (``metric``, ``models``, ``trials``,
    ``timeout``, ``cv``, ``cv_repeats``, ``seed``, ``n_jobs``, ``storage``, ``run``,
    ``test_size``, ``trial_timeout``, ``progress``), stored unchanged. Preprocessing is part of
    the search, not a switch. After ``fit``: ``classes_``, ``n_features_in_``,
    ``feature_names_in_`` (string column names only), ``best_estimator_`` (the fitted pipeline,
    which takes tuner's prepared columns: use this estimator's ``predict`` for raw rows),
    ``best_params_``, ``best_model_name_``, ``best_score_`` / ``best_index_`` (into
    ``cv_results_``), ``cv_results_`` (every trial, scikit-learn's shape, greater is better),
    ``leaderboard_`` (``tuner.tune``'s DataFrame), ``model_`` (the ``LoadedModel``).
    """

    _task = "auto"

    def _check_target(self, y) -> np.ndarray:
        y = super()._check_target(y)
        check_classification_targets(y)
        return y

    def fit(self, X: object, y: object, *, groups: object = None,
            sample_weight: object = None) -> TunerClassifier:
        frame = self._features(X, fitting=True)  # X's own errors first (empty, 1-D, ...)
        y_checked = self._check_target(y)
        classes = np.unique(y_checked)
        if len(classes) == 0:
            raise ValueError("y is empty")
        if len(classes) < 2:
            raise ValueError(f"y has only one class ({classes[0]!r}); a classifier needs at least 2")
        self._task = "binary" if len(classes) == 2 else "multiclass"
        self._tune(frame, y_checked, groups, sample_weight)
        self.classes_ = np.asarray(self.model_.classes) if len(self.model_.classes) else classes
        return self

    def predict_proba(self, X: object) -> np.ndarray:
        """Class probabilities, one column per class of ``classes_``."""
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(self._features(X)).to_numpy()

    def _winner_has_decision_function(self) -> bool:
        check_is_fitted(self, "model_")
        return hasattr(self.best_estimator_, "decision_function")

    @available_if(_winner_has_decision_function)
    def decision_function(self, X: object) -> np.ndarray:
        """The winner's decision function, where it has one (linear models, SVMs)."""
        prepared, _ = self.model_.prepare(self._features(X))
        return self.best_estimator_.decision_function(prepared)


class TunerRegressor(RegressorMixin, _TunerEstimator):
    """Tune and compare tuner's regression families on (X, y); predict with the winner.

    The same arguments and fitted attributes as ``TunerClassifier``, without the class ones.
    """

    _task = "regression"

    def _check_target(self, y) -> np.ndarray:
        y = super()._check_target(y)
        try:
            return np.asarray(y, dtype=float)
        except (TypeError, ValueError):
            raise ValueError("y must be numbers for a regressor; use TunerClassifier for labels") from None


__all__ = ["TunerClassifier", "TunerRegressor"]
