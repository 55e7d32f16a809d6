"""Prepare a table for tuning: split off the target, infer the task and the feature
schema, drop what cannot help; split off a held-out test set; reload a run's data.

Everything here runs before any model sees the data and does not learn from the
target except to decide the task, so nothing leaks into cross-validation. Reading
files is :mod:`tuner.data.read`, the schema and task inference :mod:`tuner.data.schema`,
column screening :mod:`tuner.data.columns`, target encoding :mod:`tuner.data.target`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tuner.data.columns import dropped_notes, is_text, listing, numbers_in_text, text_as_numbers, useless_reason
from tuner.data.features import looks_like_dates
from tuner.data.read import NOTES_ATTR, fingerprint, read_table
from tuner.data.row_columns import check_names, describe_span, group_codes, time_order, time_values, weight_values
from tuner.data.schema import (
    MAX_ONEHOT_CATEGORIES,
    TASKS,
    Schema,
    coerce_features,
    dtype_name,
    infer_task,
    is_categorical_dtype,
)
from tuner.data.target import check_target_values, encode_target, merge_spaced_labels, positive_class, run_pos_label
from tuner.data.text import MAX_TOKENS, MIN_TOKEN_ROWS, free_text
from tuner.errors import TunerError

# The data API callers import from here; the names defined in the modules above are
# re-exported so that one import line gives all of it.
__all__ = [
    "Dataset", "Schema", "prepare", "read_table", "fingerprint", "infer_task", "coerce_features",
    "run_pos_label", "check_test_size", "split_holdout", "load_for_run", "load_split_for_run", "prepare_for_run",
    "split_for_run", "training_part",
]


@dataclass
class Dataset:
    """A prepared table: features, encoded target, and what was inferred on the way."""

    X: pd.DataFrame
    y: np.ndarray  # class indices 0..K-1 for classification, floats for regression
    target: str
    task: str
    task_reason: str
    schema: Schema
    classes: list = field(default_factory=list)  # original labels, index = encoded value
    source: str = ""
    fingerprint: str = ""
    notes: list[str] = field(default_factory=list)
    # --groups: the group of each row (0..G-1) and the column it came from; --time-column: the
    # column the rows are sorted by (tuner.data.row_columns). Neither column is in X.
    groups: np.ndarray | None = None
    group_column: str = ""
    time_column: str = ""
    # --weights: how much each row counts in every fit and metric (None: every row the same)
    weights: np.ndarray | None = None
    weight_column: str = ""

    @property
    def n_groups(self) -> int:
        return int(len(np.unique(self.groups))) if self.groups is not None else 0

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def prepare(
    df: pd.DataFrame, target: str, task: str = "auto", *, source: str = "", min_rows: int = 10,
    pos_label=None, groups: str | None = None, time_column: str | None = None, weights: str | None = None,
) -> Dataset:
    """Split off the target, infer task and schema, drop what cannot help.

    ``pos_label``: for a binary target, the class that binary metrics score as positive
    (code 1); default: the second of the sorted labels. ``groups`` / ``time_column``: the
    columns that say which rows belong together / in which order they came
    (``tuner.data.row_columns``); neither becomes a feature, and with a time column the
    rows come back sorted by it. ``weights``: the column of row weights (finite, ≥ 0, not all 0);
    not a feature either.
    """
    notes: list[str] = list(df.attrs.get(NOTES_ATTR, []))
    if df.columns.duplicated().any():
        repeated = list(dict.fromkeys(map(str, df.columns[df.columns.duplicated()])))
        raise TunerError(f"column name(s) {listing([repr(c) for c in repeated])} appear more than once; "
                         "give every column a unique name")
    if target not in df.columns:
        close = [c for c in df.columns if str(c).lower() == target.lower()]
        hint = f" (did you mean {close[0]!r}?)" if close else f"; columns are: {', '.join(map(str, df.columns[:20]))}"
        raise TunerError(f"target column {target!r} is not in the data{hint}")
    check_names(df, target, groups, time_column, weights)
    fp = fingerprint(df)
    _, numbers, words, _ = text_as_numbers(df[target])
    if numbers is not None:  # numbers ('$1,234') with a few stray words ('?', 'unknown'): those rows have no target
        df = df.copy()
        df[target] = numbers
        notes.append(f"target {target!r} is numbers in text ({words}): read as numbers, "
                     "any other text as a missing target")
    missing = df[target].isna()
    if missing.all():
        raise TunerError(f"target column {target!r} is empty in every row; choose another --target")
    check_target_values(df, target)
    if missing.any():
        notes.append(f"dropped {int(missing.sum())} row(s) whose target {target!r} is missing")
        df = df.loc[~missing]
    if time_column:
        times = time_values(df[time_column])
        df = df.iloc[time_order(times)]
        notes.append(f"rows ordered by the time column {time_column!r} ({describe_span(times)}): folds go forward "
                     "in time and a held-out test set is the latest rows; the column is not a feature")
    codes = group_codes(df[groups]) if groups else None
    if codes is not None:
        sizes = np.bincount(codes)
        notes.append(f"{len(sizes)} groups in {groups!r} ({int(np.median(sizes))} rows per group at the median, "
                     f"{int(sizes.max())} at most): folds and a held-out test set keep each group on one side; "
                     "the column is not a feature")
    row_weights = weight_values(df[weights]) if weights else None
    if row_weights is not None:
        zero = int((row_weights == 0).sum())
        notes.append(f"row weights from {weights!r} (from {row_weights.min():g} to {row_weights.max():g}, median "
                     f"{np.median(row_weights):g}{f'; {zero} row(s) of weight 0 count in nothing' if zero else ''}): "
                     "used in every fit and every metric; the column is not a feature")
    y_raw, spaced = merge_spaced_labels(df[target], target)
    if spaced:
        notes.append(spaced)
    inferred, reason = infer_task(y_raw)
    if task == "auto":
        task = inferred
    elif task not in TASKS:
        raise TunerError(f"unknown task {task!r}; use auto, binary, multiclass or regression")
    else:
        reason = f"set by --task (inference would say {inferred}: {reason})"
    y, classes = encode_target(y_raw, task, target)
    y, classes, positive = positive_class(y, classes, task, target, pos_label)
    if len(df) < min_rows:
        raise TunerError(f"only {len(df)} row(s) with a target; at least {min_rows} are needed to cross-validate")
    if task != "regression" and row_weights is not None:
        weighed = np.bincount(y, weights=row_weights, minlength=len(classes))
        weightless = [repr(classes[i]) for i in np.flatnonzero(weighed == 0)]
        if weightless and (task == "binary" or len(weightless) > len(classes) - 2):
            raise TunerError(f"class(es) {listing(weightless)} of target {target!r} have weight 0 in every row, so "
                             f"{'a binary metric' if task == 'binary' else 'a classifier'} has too few classes to "
                             "score; give those rows a weight, or drop the class")
    if task != "regression":
        counts = np.bincount(y, minlength=len(classes))
        lonely = [repr(classes[i]) for i in np.flatnonzero(counts < 2)]
        if lonely:
            which = f"class {lonely[0]} of target {target!r} has" if len(lonely) == 1 else \
                f"classes {listing(lonely)} of target {target!r} have"
            raise TunerError(f"{which} a single row; cross-validation needs "
                             "at least 2 rows of every class (and --cv at most the rarest class's count): "
                             "remove those rows or merge them into another class")

    X = df.drop(columns=[c for c in (target, groups, time_column, weights) if c])
    X, text_notes, missing_words = numbers_in_text(X)
    dropped, dates, texts = {}, [], {}
    for name in X.columns:
        col = X[name]
        why = useless_reason(name, col, len(X))
        usable = why is None or why.startswith("identifier")
        if usable and is_categorical_dtype(col) and not pd.api.types.is_bool_dtype(col) and looks_like_dates(col):
            dates.append(name)  # a timestamp per row is not an identifier: it becomes calendar features
            continue
        if usable and is_text(col) and (why or col.nunique() > MAX_ONEHOT_CATEGORIES):
            words, detail = free_text(col)  # too many values to encode: words that repeat, or an identifier
            if words:
                texts[name] = detail
                continue
            if why:
                why += f" (not free text: {detail})"
        if why:
            dropped[name] = why
    notes += text_notes + dropped_notes(dropped)
    if texts:
        notes.append(f"free-text columns, made into word features inside each fold (TF-IDF of the {MAX_TOKENS} most "
                     f"frequent words seen in at least {MIN_TOKEN_ROWS} rows, plus the word count) instead of being "
                     "dropped or coded as categories: " + "; ".join(f"{c} ({d})" for c, d in texts.items()))
    X = X.drop(columns=list(dropped))
    if X.shape[1] == 0:
        raise TunerError("no usable feature columns are left after dropping constant, empty and identifier columns")
    categorical = [c for c in X.columns if is_categorical_dtype(X[c])]
    numeric = [c for c in X.columns if c not in categorical]
    infinite = {}
    for c in numeric:
        values = pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        n_inf = int(np.isinf(values).sum())
        if n_inf:
            infinite[c] = n_inf
    if infinite:
        notes.append(f"treated {sum(infinite.values())} infinite value(s) as missing (imputed inside each fold): "
                     + listing([f"{c} ({n})" for c, n in infinite.items()]))
    schema = Schema(numeric=numeric, categorical=categorical, datetime=dates,
                    missing_words={c: w for c, w in missing_words.items() if c in numeric}, text=list(texts))
    X = coerce_features(X, schema)
    schema.categories = {c: sorted(X[c].dropna().unique().tolist()) for c in schema.encoded}
    encoded = schema.encoded
    if encoded:
        kinds = ", ".join(f"{c} ({dtype_name(df[c])})" for c in encoded[:10])
        more = f" and {len(encoded) - 10} more" if len(encoded) > 10 else ""
        notes.append(f"categorical columns: {kinds}{more}")
        many = [f"{c} ({len(schema.categories[c])})" for c in encoded if len(schema.categories[c]) > MAX_ONEHOT_CATEGORIES]
        if many:
            notes.append(f"categorical columns with more than {MAX_ONEHOT_CATEGORIES} distinct values: {listing(many)}; "
                         f"one-hot encoding (linear models, SVMs, networks) keeps the {MAX_ONEHOT_CATEGORIES - 1} most "
                         "frequent values of each and pools the rest in one column, random forests use ordinal "
                         "codes, and both may use in-fold target encoding instead (prep_high_cardinality); "
                         "xgboost and hist_gradient_boosting split on the categories natively (at most 255 each)")
    if dates:
        notes.append(f"date/time columns, expanded into year, month, day, weekday, hour and days since 1970: "
                     f"{', '.join(dates)}")
    if positive:
        notes.append(positive)
    return Dataset(
        X=X.reset_index(drop=True), y=y, target=target, task=task, task_reason=reason, schema=schema,
        classes=classes, source=source, fingerprint=fp, notes=notes,
        groups=codes, group_column=groups or "", time_column=time_column or "",
        weights=row_weights, weight_column=weights or "",
    )


def check_test_size(test_size: float | None) -> None:
    """A held-out test fraction is 0 (none) or strictly between 0 and 1."""
    if test_size is None or test_size == 0:
        return
    if not (0 < test_size < 1):
        raise TunerError(f"--test-size must be a fraction between 0 and 1, e.g. 0.2 (got {test_size:g})")


def split_holdout(ds: Dataset, test_size: float, seed: int, gap: int = 0) -> tuple[Dataset, Dataset]:
    """Split off a held-out test set before any tuning: (training part, test part).

    Stratified by class for classification, shuffled with ``seed``; with groups
    (``ds.groups``) whole groups are held out (about ``test_size`` of the groups, seeded);
    with a time column the test set is the latest ``test_size`` of the rows, after ``gap``
    rows left out between the parts. The split depends only on (data, seed, test_size, gap),
    so any later process recomputes the same rows. Rows keep their order within each part.
    Both parts keep the fingerprint of the full data.
    """
    from dataclasses import replace

    check_test_size(test_size)
    if not test_size:
        raise ValueError("split_holdout needs a test_size between 0 and 1")
    n = len(ds.y)
    if ds.time_column:
        (train, test), how = _latest_rows(n, test_size, gap), f"the latest rows by {ds.time_column!r}"
    else:
        train, test, how = _shuffled_split(ds, test_size, seed)
    note = (f"held out {len(test)} of {n} rows ({test_size:g}; {how}) as a test set, scored once after tuning")

    def part(rows: np.ndarray, notes: list[str]) -> Dataset:
        groups = ds.groups[rows] if ds.groups is not None else None
        weights = ds.weights[rows] if ds.weights is not None else None
        return replace(ds, X=ds.X.iloc[rows].reset_index(drop=True), y=ds.y[rows], notes=notes, groups=groups,
                       weights=weights)

    return part(train, list(ds.notes) + [note]), part(test, [note])


def _latest_rows(n: int, test_size: float, gap: int) -> tuple[np.ndarray, np.ndarray]:
    n_test = max(1, int(round(n * test_size)))
    n_train = n - n_test - gap
    if n_train < 2:
        raise TunerError(f"--test-size {test_size:g} with --gap {gap} leaves {max(n_train, 0)} of these {n} rows "
                         "to tune on; use a smaller --test-size or --gap")
    return np.arange(n_train), np.arange(n - n_test, n)


def _shuffled_split(ds: Dataset, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    index = np.arange(len(ds.y))
    try:
        if ds.groups is not None:
            if ds.n_groups < 2:
                raise ValueError(f"only {ds.n_groups} group")
            (train, test), = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(
                index, groups=ds.groups)
            how = f"whole groups of {ds.group_column!r}, seed {seed}"
            if ds.task != "regression" and len(np.unique(ds.y[train])) < ds.n_classes:
                raise ValueError("the training part would lack a class")
        else:
            stratify = ds.y if ds.task != "regression" else None
            train, test = train_test_split(index, test_size=test_size, random_state=seed, shuffle=True,
                                           stratify=stratify)
            how = ("stratified by class, " if stratify is not None else "") + f"seed {seed}"
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TunerError(f"--test-size {test_size:g} cannot split these {len(index)} rows: {first}; "
                         "use a larger (or no) --test-size, or more data") from None
    return np.sort(train), np.sort(test), how


def load_split_for_run(config, data: pd.DataFrame | None = None) -> tuple[Dataset, Dataset | None]:
    """(training part, held-out test part or None) of a run's data, reloaded from its source, or
    taken from ``data`` (the run's table as a DataFrame: ``split_for_run``); checked either way."""
    if data is not None:
        return split_for_run(data, config)
    ds = _load_full_for_run(config)
    test_size = config.test_size or 0.0
    if not test_size:
        return ds, None
    return split_holdout(ds, test_size, config.seed, config.gap)


def load_for_run(config) -> Dataset:
    """Reload a run's data from its recorded source and check it is the same data.

    ``config`` is the run's RunConfig; a different fingerprint is refused. When the run
    holds out a test set (``config.test_size``), this is the training part only: the
    rows the families were tuned on, and the rows a final model is refit on.
    """
    return load_split_for_run(config)[0]


def _load_full_for_run(config) -> Dataset:
    if config.source in ("", "<DataFrame>"):
        raise TunerError(
            f"run {config.run!r} was made from an in-memory DataFrame; its data cannot be reloaded from the storage"
        )
    return _same_data(prepare_for_run(read_table(config.source), config), config,
                      f"the data at {config.source} changed since run {config.run!r} was made", "; restore it or start a new run")


def _same_data(ds: Dataset, config, problem: str, fix: str = "") -> Dataset:
    """``ds`` if it is the data the run was made from (same fingerprint), else ``problem`` as an error."""
    if ds.fingerprint != config.fingerprint:
        raise TunerError(f"{problem} (fingerprint {ds.fingerprint[:12]} vs {config.fingerprint[:12]}){fix}")
    return ds


def prepare_for_run(frame: pd.DataFrame, config) -> Dataset:
    """``prepare`` a run's table as the run did: its target, task, positive class, groups, time and weight columns."""
    return prepare(frame, config.target, config.task, source=config.source, pos_label=run_pos_label(config),
                   groups=config.groups or None, time_column=config.time_column or None,
                   weights=config.weights or None)


def split_for_run(frame: pd.DataFrame, config) -> tuple[Dataset, Dataset | None]:
    """(training part, held-out part or None) of ``frame``, a run's table given as a DataFrame
    (a run made from one cannot reload it); a different table is refused by its fingerprint."""
    ds = _same_data(prepare_for_run(frame, config), config, f"the DataFrame given is not the data of run {config.run!r}")
    return split_holdout(ds, config.test_size, config.seed, config.gap) if config.test_size else (ds, None)


def training_part(frame: pd.DataFrame, config) -> Dataset:
    """The rows of ``frame`` (a run's table) that the run tuned on: ``split_for_run``'s first part."""
    return split_for_run(frame, config)[0]
