"""A weighted average of fitted pipelines: the model behind the leaderboard's ``ensemble`` row.

Classification averages the members' class probabilities (columns matched by class code, a
class a member never saw counting as 0) and predicts the most probable class; regression
averages the predicted values. ``fit`` fits every member on the same rows; per-member fit
keywords (row weights routed to each member's model) come as ``member_fit_params``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

NAME = "ensemble"  # its leaderboard row, and the --model that exports it


class WeightedEnsemble(BaseEstimator):
    """``members``: unfitted (or fitted) pipelines; ``weights``: one per member, summing to 1;
    ``task``: "binary", "multiclass" or "regression"."""

    def __init__(self, members=None, weights=None, task: str = "regression"):
        self.members = members
        self.weights = weights
        self.task = task

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    def fit(self, X, y, member_fit_params=None):
        from sklearn.base import clone

        params = member_fit_params or [{} for _ in self.members]
        self.members_ = [clone(m).fit(X, y, **p) for m, p in zip(self.members, params)]
        self._set_fitted(y)
        return self

    @classmethod
    def from_fitted(cls, members: list, weights, task: str, classes=None) -> "WeightedEnsemble":
        """An ensemble of already fitted ``members`` (an exported artifact's, when loaded)."""
        ensemble = cls(members=list(members), weights=[float(w) for w in weights], task=task)
        ensemble.members_ = list(members)
        ensemble._set_fitted(None, classes)
        return ensemble

    def _set_fitted(self, y, classes=None) -> None:
        if not self.is_classifier:
            return
        if classes is None:
            seen = set(np.unique(np.asarray(y, dtype=int))) if y is not None else set()
            for m in self.members_:
                seen |= set(np.asarray(m.classes_, dtype=int).tolist())
            classes = sorted(seen)
        self.classes_ = np.asarray(classes, dtype=int)

    def predict_proba(self, X) -> np.ndarray:
        if not self.is_classifier:
            raise AttributeError("predict_proba is for classification ensembles")
        column = {int(c): i for i, c in enumerate(self.classes_)}
        total = np.zeros((len(X), len(self.classes_)))
        for member, weight in zip(self.members_, self.weights):
            proba = np.asarray(member.predict_proba(X), dtype=float)
            cols = [column[int(c)] for c in member.classes_]
            total[:, cols] += weight * proba
        return total / float(np.sum(self.weights))

    def predict(self, X) -> np.ndarray:
        if self.is_classifier:
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        values = sum(w * np.asarray(m.predict(X), dtype=float) for m, w in zip(self.members_, self.weights))
        return values / float(np.sum(self.weights))


__all__ = ["NAME", "WeightedEnsemble"]
