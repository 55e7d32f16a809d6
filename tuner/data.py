"""Read a table (CSV / TSV / Parquet, compressed too, or a built-in demo), infer the task
and the feature schema, and drop what cannot help.

Everything here runs before any model sees the data and does not learn from the
target except to decide the task, so nothing leaks into cross-validation.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import TunerError
from .features import looks_like_dates

BUILTINS = {
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
    "iris": "load_iris",
    "diabetes": "load_diabetes",
    "digits": "load_digits",
}
TASKS = ("binary", "multiclass", "regression")
# An integer target with at most this many distinct values is read as classes.
MAX_CLASSES_FOR_INT_TARGET = 20
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|key|index|idx)$|^(id|uuid|guid|index)[_\s-]", re.I)
_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".parquet": None, ".pq": None}


@dataclass
class Schema:
    """The input columns a model expects: names in order, and their kind."""

    numeric: list[str]
    categorical: list[str]  # text columns, dates included (they arrive as text)
    categories: dict[str, list[str]] = field(default_factory=dict)
    datetime: list[str] = field(default_factory=list)  # the text columns holding dates

    @property
    def columns(self) -> list[str]:
        return self.numeric + self.categorical

    @property
    def encoded(self) -> list[str]:
        """Text columns that are categories (encoded), as opposed to dates (expanded)."""
        return [c for c in self.categorical if c not in self.datetime]

    def to_dict(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical, "categories": self.categories,
                "datetime": self.datetime}

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        return cls(list(d["numeric"]), list(d["categorical"]), dict(d.get("categories", {})),
                   list(d.get("datetime", [])))


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

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def read_table(source: str) -> pd.DataFrame:
    """Read ``source``: a path to .csv/.tsv/.parquet (optionally .gz/.bz2/.zip/.xz) or ``builtin:NAME``."""
    if source.startswith("builtin:"):
        return _read_builtin(source.removeprefix("builtin:"))
    path = Path(source)
    if "://" in source:  # a URL: the format comes from its path, not its query string
        from urllib.parse import urlparse

        path = Path(urlparse(source).path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".bz2", ".zip", ".xz", ".zst"}:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind not in _SUFFIXES:
        raise TunerError(
            f"unknown data format for {source!r}; use a .csv, .tsv or .parquet file "
            f"(optionally .gz), or one of: {', '.join('builtin:' + b for b in BUILTINS)}"
        )
    if "://" not in source and not path.exists():
        raise TunerError(f"data file not found: {source}; check the path")
    try:
        if _SUFFIXES[kind] is None:
            df = pd.read_parquet(source)
        else:
            df = pd.read_csv(source, sep=_SUFFIXES[kind], low_memory=False)
    except ImportError as exc:  # s3://, gs://, ... need fsspec and the file system's package
        raise TunerError(f"cannot read {source!r}: {str(exc).strip().splitlines()[0]}") from exc
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TunerError(f"cannot read {source!r} as {kind[1:].upper()}: {first}") from exc
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise TunerError(f"{source!r} holds no data rows; give a file with a header and at least one row")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _read_builtin(name: str) -> pd.DataFrame:
    loader = BUILTINS.get(name)
    if loader is None:
        raise TunerError(f"unknown built-in dataset {name!r}; choose one of: {', '.join(BUILTINS)}")
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)(as_frame=True)
    frame = bunch.frame.copy()
    if name in {"breast_cancer", "wine", "iris"}:  # readable labels, as a real file would have
        frame["target"] = np.asarray(bunch.target_names)[bunch.target]
    return frame


def fingerprint(df: pd.DataFrame) -> str:
    """A SHA-256 of the table's contents and column names (row order matters)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, df.columns)).encode())
    digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def infer_task(y: pd.Series) -> tuple[str, str]:
    """Binary / multiclass / regression from the target's values, with the reason."""
    n = int(y.nunique(dropna=True))
    if _is_categorical_dtype(y):
        kind = "binary" if n == 2 else "multiclass"
        return kind, f"target is {_dtype_name(y)} with {n} distinct values"
    if n == 2:
        return "binary", "target has exactly 2 distinct values"
    if pd.api.types.is_integer_dtype(y) and n <= MAX_CLASSES_FOR_INT_TARGET:
        return "multiclass", f"integer target with {n} distinct values (≤ {MAX_CLASSES_FOR_INT_TARGET})"
    if pd.api.types.is_float_dtype(y):
        return "regression", f"float target with {n} distinct values"
    return "regression", f"integer target with {n} distinct values (> {MAX_CLASSES_FOR_INT_TARGET})"


def _is_categorical_dtype(s: pd.Series) -> bool:
    return (
        pd.api.types.is_bool_dtype(s)
        or isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(s)
        or pd.api.types.is_string_dtype(s)
    )


def _dtype_name(s: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if isinstance(s.dtype, pd.CategoricalDtype):
        return "category"
    return "text"


def _useless_reason(name: str, col: pd.Series, n_rows: int) -> str | None:
    non_null = col.dropna()
    if non_null.empty:
        return "all values missing"
    n_unique = int(non_null.nunique())
    if n_unique == 1:
        return "constant"
    if n_rows < 20 or pd.api.types.is_float_dtype(col) or pd.api.types.is_bool_dtype(col):
        return None
    if _is_categorical_dtype(col) and n_unique == len(non_null):
        return "identifier-like: a different text value in every row"
    if pd.api.types.is_integer_dtype(col) and n_unique == len(non_null) == n_rows:
        values = non_null.to_numpy()
        consecutive = values.max() - values.min() + 1 == n_rows
        if consecutive or _ID_NAME.search(name):
            return "identifier-like: a unique integer per row"
    return None


def _normalise_categorical(col: pd.Series) -> pd.Series:
    """Object dtype holding strings, with NaN for missing: one representation for every fold."""
    values = np.array([np.nan if pd.isna(v) else str(v) for v in col.to_numpy(dtype=object)], dtype=object)
    return pd.Series(values, index=col.index, dtype=object)


def coerce_features(X: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Put ``X`` in the representation the pipeline was fitted on (columns in schema order)."""
    out = pd.DataFrame(index=X.index)
    for c in schema.numeric:
        out[c] = pd.to_numeric(X[c], errors="coerce").astype(float).replace([np.inf, -np.inf], np.nan)
    for c in schema.categorical:
        out[c] = _normalise_categorical(X[c])
    return out


def prepare(
    df: pd.DataFrame, target: str, task: str = "auto", *, source: str = "", min_rows: int = 10
) -> Dataset:
    """Split off the target, infer task and schema, drop what cannot help."""
    if target not in df.columns:
        close = [c for c in df.columns if c.lower() == target.lower()]
        hint = f" (did you mean {close[0]!r}?)" if close else f"; columns are: {', '.join(map(str, df.columns[:20]))}"
        raise TunerError(f"target column {target!r} is not in the data{hint}")
    fp = fingerprint(df)
    notes: list[str] = []
    missing = df[target].isna()
    if missing.all():
        raise TunerError(f"target column {target!r} is empty in every row; choose another --target")
    if missing.any():
        notes.append(f"dropped {int(missing.sum())} row(s) whose target {target!r} is missing")
        df = df.loc[~missing]
    y_raw = df[target]
    inferred, reason = infer_task(y_raw)
    if task == "auto":
        task = inferred
    elif task not in TASKS:
        raise TunerError(f"unknown task {task!r}; use auto, binary, multiclass or regression")
    else:
        reason = f"set by --task (inference would say {inferred}: {reason})"
    y, classes = _encode_target(y_raw, task, target)
    if len(df) < min_rows:
        raise TunerError(f"only {len(df)} row(s) with a target; at least {min_rows} are needed to cross-validate")

    X = df.drop(columns=[target])
    if X.columns.duplicated().any():
        dup = X.columns[X.columns.duplicated()][0]
        raise TunerError(f"column {dup!r} appears more than once; give every column a unique name")
    dropped, dates = {}, []
    for name in X.columns:
        why = _useless_reason(name, X[name], len(X))
        if why and why.startswith("identifier") and _is_categorical_dtype(X[name]) and looks_like_dates(X[name]):
            why = None  # a timestamp per row is not an identifier: it becomes calendar features
        if why:
            dropped[name] = why
        elif _is_categorical_dtype(X[name]) and not pd.api.types.is_bool_dtype(X[name]) and looks_like_dates(X[name]):
            dates.append(name)
    for name, why in dropped.items():
        notes.append(f"dropped column {name!r}: {why}")
    X = X.drop(columns=list(dropped))
    if X.shape[1] == 0:
        raise TunerError("no usable feature columns are left after dropping constant, empty and identifier columns")
    categorical = [c for c in X.columns if _is_categorical_dtype(X[c])]
    numeric = [c for c in X.columns if c not in categorical]
    schema = Schema(numeric=numeric, categorical=categorical, datetime=dates)
    X = coerce_features(X, schema)
    schema.categories = {c: sorted(X[c].dropna().unique().tolist()) for c in schema.encoded}
    encoded = schema.encoded
    if encoded:
        kinds = ", ".join(f"{c} ({_dtype_name(df[c])})" for c in encoded[:10])
        more = f" and {len(encoded) - 10} more" if len(encoded) > 10 else ""
        notes.append(f"categorical columns: {kinds}{more}")
    if dates:
        notes.append(f"date/time columns, expanded into year, month, day, weekday, hour and days since 1970: "
                     f"{', '.join(dates)}")
    return Dataset(
        X=X.reset_index(drop=True), y=y, target=target, task=task, task_reason=reason, schema=schema,
        classes=classes, source=source, fingerprint=fp, notes=notes,
    )


def _encode_target(y_raw: pd.Series, task: str, target: str) -> tuple[np.ndarray, list]:
    if task == "regression":
        y = pd.to_numeric(y_raw, errors="coerce")
        if y.isna().any():
            bad = y_raw[y.isna()].iloc[0]
            raise TunerError(
                f"target {target!r} has non-numeric value {bad!r}; regression needs numbers (or use --task multiclass)"
            )
        y = y.to_numpy(dtype=float)
        if not np.isfinite(y).all():
            raise TunerError(f"target {target!r} holds infinite values; remove those rows")
        return y, []
    labels, codes = _sorted_labels(y_raw)
    if len(labels) < 2:
        raise TunerError(
            f"target {target!r} has a single class ({labels[0]!r}); classification needs at least two"
        )
    if task == "binary" and len(labels) != 2:
        raise TunerError(f"--task binary needs 2 classes but {target!r} has {len(labels)}; use --task multiclass")
    return codes, labels


def _sorted_labels(y: pd.Series) -> tuple[list, np.ndarray]:
    values = y.to_numpy()
    uniques = pd.unique(values)
    try:
        labels = sorted(uniques.tolist())
    except TypeError:  # mixed types: order by text
        labels = sorted(uniques.tolist(), key=str)
    labels = [_native(v) for v in labels]
    index = {label: i for i, label in enumerate(labels)}
    codes = np.array([index[_native(v)] for v in values], dtype=np.int64)
    return labels, codes


def _native(v):
    """numpy scalars → Python scalars, so class labels go to JSON and back unchanged."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def check_test_size(test_size: float | None) -> None:
    """A held-out test fraction is 0 (none) or strictly between 0 and 1."""
    if test_size is None or test_size == 0:
        return
    if not (0 < test_size < 1):
        raise TunerError(f"--test-size must be a fraction between 0 and 1, e.g. 0.2 (got {test_size:g})")


def split_holdout(ds: Dataset, test_size: float, seed: int) -> tuple[Dataset, Dataset]:
    """Split off a held-out test set before any tuning: (training part, test part).

    Stratified by class for classification, shuffled with ``seed``; the split depends only
    on (data, seed, test_size), so any later process recomputes the same rows. Rows keep
    their file order within each part. Both parts keep the fingerprint of the full data.
    """
    from dataclasses import replace

    from sklearn.model_selection import train_test_split

    check_test_size(test_size)
    if not test_size:
        raise ValueError("split_holdout needs a test_size between 0 and 1")
    index = np.arange(len(ds.y))
    stratify = ds.y if ds.task != "regression" else None
    try:
        train, test = train_test_split(index, test_size=test_size, random_state=seed, shuffle=True, stratify=stratify)
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TunerError(f"--test-size {test_size:g} cannot split these {len(index)} rows: {first}; "
                         "use a larger (or no) --test-size, or more data") from None
    train, test = np.sort(train), np.sort(test)
    how = "stratified by class, " if stratify is not None else ""
    note = (f"held out {len(test)} of {len(index)} rows ({test_size:g}; {how}seed {seed}) as a test set, "
            "scored once after tuning")

    def part(rows: np.ndarray, notes: list[str]) -> Dataset:
        return replace(ds, X=ds.X.iloc[rows].reset_index(drop=True), y=ds.y[rows], notes=notes)

    return part(train, list(ds.notes) + [note]), part(test, [note])


def load_split_for_run(config) -> tuple[Dataset, Dataset | None]:
    """(training part, held-out test part or None) of a run's data, reloaded and checked."""
    ds = _load_full_for_run(config)
    test_size = getattr(config, "test_size", 0.0) or 0.0
    if not test_size:
        return ds, None
    return split_holdout(ds, test_size, config.seed)


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
    frame = read_table(config.source)
    ds = prepare(frame, config.target, config.task, source=config.source)
    if ds.fingerprint != config.fingerprint:
        raise TunerError(
            f"the data at {config.source} changed since run {config.run!r} was made "
            f"(fingerprint {ds.fingerprint[:12]} vs {config.fingerprint[:12]}); restore it or start a new run"
        )
    return ds
