"""A loaded model artifact: check new rows against the training schema and predict.

Why a module of its own: ``tuner.load(...).predict``, ``tuner predict`` and ``tuner serve``
all predict through :class:`LoadedModel`, so they treat inputs and non-finite outputs the
same way.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tuner.data import inputs
from tuner.data.schema import Schema
from tuner.errors import TunerError


@dataclass
class Prediction:
    """What :meth:`LoadedModel.predict_batch` returns."""
    predictions: np.ndarray  # original labels (classification) or values (regression)
    probabilities: np.ndarray | None  # one column per class, in card order
    notes: list[str]


class LoadedModel:
    """A loaded artifact: ``predict(df)``, ``predict_proba(df)``, ``card``.

    Input is checked against the schema of the training data (see :mod:`tuner.data.inputs`).
    """

    def __init__(self, path: Path | None, card: dict, pipeline, version_notes: list[str] | None = None):
        self.path = Path(path) if path is not None else None  # None: refit in memory (tuner.best_model)
        self.card = card
        self.pipeline = pipeline
        self.task: str = card["task"]
        self.family: str = card["family"]
        self.classes: list = list(card.get("classes") or [])
        self.schema = Schema.from_dict(card["schema"])
        self.version_notes = version_notes or []
        # binary: the probability of classes[1] from which it is the label (None: the most probable class)
        self.threshold: float | None = (card.get("decision") or {}).get("threshold") if self.task == "binary" else None

    def __repr__(self) -> str:
        where = f"from {self.path}" if self.path is not None else "in memory"
        return f"<tuner model {self.family} ({self.task}, target {self.card['target']!r}) {where}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: family, task and metric, when it was trained, and the input columns."""
        import html

        card, esc = self.card, html.escape
        row = card.get("leaderboard_row") or {}
        score = ((row.get("metrics") or {}).get(card.get("metric")) or {}).get("mean")
        columns = card.get("schema", {}).get("columns") or []
        rows = [
            ("family", card.get("family")), ("task", f"{card.get('task')} (target {card.get('target')!r})"),
            ("CV " + str(card.get("metric")), "—" if score is None else f"{score:.4f}"),
            ("trained", card.get("created_at")), ("run", card.get("run")),
            ("rows refit", (card.get("data") or {}).get("rows_refit")),
            ("classes", ", ".join(map(str, self.classes)) if self.classes else None),
            ("input columns", ", ".join(f"{c['name']} ({c['type']})" for c in columns)),
            ("from", str(self.path) if self.path is not None else "memory"),
        ]
        body = "".join(f"<tr><th style='text-align:left'>{esc(k)}</th><td style='text-align:left'>{esc(str(v))}</td></tr>"
                       for k, v in rows if v not in (None, ""))
        return f"<table><caption>tuner model</caption>{body}</table>"

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    @property
    def proba_columns(self) -> list[str]:
        return [f"proba_{c}" for c in self.classes]

    def prepare(self, data, *, row_offset: int = 0) -> tuple[pd.DataFrame, list[str]]:
        """(features in the fitted representation, notes); raises ``InputError`` naming the column.

        ``data``: a DataFrame, a list of records (dicts keyed by column, each holding every
        column: null / None for a missing value) or anything ``pandas.DataFrame`` takes.
        """
        return inputs.coerce(self._frame(data), self.schema, row_offset=row_offset)

    def _frame(self, data) -> pd.DataFrame:
        from tuner.data.frames import as_pandas

        data = as_pandas(data)
        if isinstance(data, pd.DataFrame):
            frame = data
        elif isinstance(data, (list, tuple)) and all(isinstance(r, dict) for r in data):
            frame = inputs.records_frame(list(data), self.schema)
        else:
            try:
                frame = pd.DataFrame(data)
            except (TypeError, ValueError) as exc:
                raise inputs.InputError(f"cannot make a table of rows from a {type(data).__name__}: {exc}; "
                                        "pass a DataFrame or a list of records {column: value}") from None
        return frame.rename(columns=str)

    def predict_batch(self, data, *, proba: bool = False, row_offset: int = 0,
                      threshold: float | None = None) -> Prediction:
        """Predictions (+ probabilities) and the notes about the input, without warnings.

        A binary model's label is ``classes[1]`` where its probability reaches ``threshold``
        (default: the card's ``decision``; ``tuner predict --threshold``), else ``classes[0]``.

        A row whose output is not a finite number (inputs far outside the training range can
        overflow a linear model) gets NaN as its prediction / probabilities, with a note.
        """
        X, notes = self.prepare(data, row_offset=row_offset)
        if len(X) == 0:
            empty = np.empty((0, len(self.classes))) if proba and self.is_classifier else None
            return Prediction(np.asarray([], dtype=float if not self.is_classifier else object), empty, notes)
        from sklearn import config_context

        from tuner.evaluation.cross_validation import predict_outputs

        # inputs.coerce already turned infinities into NaN (which the imputers handle); huge finite
        # values may still overflow inside the model: quietly, the rows are flagged below
        with config_context(assume_finite=True), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            codes, probabilities = predict_outputs(self.pipeline, X, self.task, len(self.classes))
        if not self.is_classifier:
            values = np.asarray(codes, dtype=float)
            bad = ~np.isfinite(values)
            if bad.any():
                values = np.where(bad, np.nan, values)
                notes = notes + [_not_finite_note(bad, row_offset)]
            return Prediction(values, None, notes)
        probabilities = np.asarray(probabilities, dtype=float)
        cut = self.check_threshold(threshold) if threshold is not None else self.threshold
        if cut is not None:
            from tuner.evaluation.threshold import labels as labels_at

            codes = labels_at(probabilities[:, 1], cut)
        bad_rows = ~np.isfinite(probabilities).all(axis=1)
        labels = np.asarray(self.classes, dtype=object)[np.asarray(codes, dtype=int)]
        if bad_rows.any():
            probabilities = np.where(bad_rows[:, None], np.nan, probabilities)
            labels[bad_rows] = None
            notes = notes + [_not_finite_note(bad_rows, row_offset)]
        elif all(isinstance(c, (int, float, bool)) for c in self.classes):
            labels = labels.astype(type(self.classes[0]) if len({type(c) for c in self.classes}) == 1 else object)
        return Prediction(labels, probabilities if proba else None, notes)

    def check_threshold(self, threshold: float) -> float:
        """``threshold`` for this model's labels, or a ``TunerError`` saying why it cannot be one."""
        if self.task != "binary":
            raise TunerError(f"a threshold is for binary models; this one is {self.task} "
                             "(its label is the most probable class)")
        value = float(threshold)
        if not 0.0 <= value <= 1.0:
            raise TunerError(f"the threshold is a probability of {self.classes[1]!r}: between 0 and 1 (got {value:g})")
        return value

    def predict(self, data, threshold: float | None = None) -> np.ndarray:
        """Predicted labels (classification, as in the training data) or values (regression);
        ``threshold`` overrides a binary model's decision threshold (its card's ``decision``).

        Notes about the input (extra columns ignored, unseen categories, ...) are issued as
        :class:`tuner.data.inputs.InputWarning`; a problem that stops prediction raises ``InputError``.
        """
        result = self.predict_batch(data, threshold=threshold)
        _warn(result.notes)
        return result.predictions

    def predict_proba(self, data) -> pd.DataFrame:
        """One column ``proba_<class>`` per class, in the card's class order; index as the input's."""
        if not self.is_classifier:
            raise TunerError("predict_proba is for classification models; this one does regression")
        frame = self._frame(data)
        result = self.predict_batch(frame, proba=True)
        _warn(result.notes)
        return pd.DataFrame(result.probabilities, columns=self.proba_columns, index=frame.index)


def _not_finite_note(bad: np.ndarray, row_offset: int = 0) -> str:
    rows = np.flatnonzero(bad)
    shown = ", ".join(str(row_offset + int(i) + 1) for i in rows[:5]) + (" ..." if len(rows) > 5 else "")
    return (f"{len(rows)} row(s) have no prediction (the model's output is not a finite number; inputs far "
            f"outside the training range?): data row(s) {shown}")


def _warn(notes: list[str]) -> None:
    for text in notes:
        warnings.warn(text, inputs.InputWarning, stacklevel=3)
