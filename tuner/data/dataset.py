"""Read a table (CSV / TSV / Parquet, compressed too, or a built-in demo), infer the task
and the feature schema, and drop what cannot help.

Everything here runs before any model sees the data and does not learn from the
target except to decide the task, so nothing leaks into cross-validation.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tuner.errors import TunerError
from tuner.data.features import looks_like_dates

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
    # numeric columns whose few text values training read as missing ("?", "n/a"): the same
    # words are missing at prediction time too (any other text there is an input error)
    missing_words: dict[str, list[str]] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return self.numeric + self.categorical

    @property
    def encoded(self) -> list[str]:
        """Text columns that are categories (encoded), as opposed to dates (expanded)."""
        return [c for c in self.categorical if c not in self.datetime]

    def to_dict(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical, "categories": self.categories,
                "datetime": self.datetime, "missing_words": self.missing_words}

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        return cls(list(d["numeric"]), list(d["categorical"]), dict(d.get("categories", {})),
                   list(d.get("datetime", [])), dict(d.get("missing_words", {})))


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
    notes: list[str] = []
    options: dict = {}
    if _SUFFIXES[kind] is not None:
        options = _sniff_text(source, path, kind, notes)
    try:
        if _SUFFIXES[kind] is None:
            df = pd.read_parquet(source)
        else:
            try:
                df = pd.read_csv(source, low_memory=False, **options)
            except UnicodeDecodeError:
                if "encoding" in options:
                    raise
                options["encoding"] = "latin-1"  # every byte is a Latin-1 character: this cannot fail
                notes.append("the file is not valid UTF-8: read as Latin-1")
                df = pd.read_csv(source, low_memory=False, **options)
            if "://" not in source:
                _check_header(source, options)
    except ImportError as exc:  # s3://, gs://, ... need fsspec and the file system's package
        raise TunerError(f"cannot read {source!r}: {str(exc).strip().splitlines()[0]}") from exc
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, pd.errors.EmptyDataError):
            raise TunerError(f"{source!r} is empty; give a file with a header row and at least one data row") from None
        raise TunerError(f"cannot read {source!r} as {kind[1:].upper()}: {first}") from exc
    if df.shape[1] == 0 or df.shape[0] == 0:
        what = "has a header but no data rows" if df.shape[1] else "holds no data rows"
        raise TunerError(f"{source!r} {what}; give a file with a header and at least one row")
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs[NOTES_ATTR] = notes  # read by prepare(): how the file was read, when it was unusual
    return df


# prepare() reports the notes read_table left here (delimiter or encoding it guessed).
NOTES_ATTR = "tuner_read_notes"
_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_BYTES = 64 * 1024


def _head_bytes(source: str, path: Path) -> bytes | None:
    """The first bytes of a local file, decompressed; None for URLs (not sniffed)."""
    if "://" in source:
        return None
    suffix = path.suffix.lower()
    try:
        if suffix == ".gz":
            import gzip

            with gzip.open(path, "rb") as fh:
                return fh.read(_SNIFF_BYTES)
        if suffix == ".bz2":
            import bz2

            with bz2.open(path, "rb") as fh:
                return fh.read(_SNIFF_BYTES)
        if suffix == ".xz":
            import lzma

            with lzma.open(path, "rb") as fh:
                return fh.read(_SNIFF_BYTES)
        if suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    return None  # pandas says what is wrong
                with zf.open(names[0]) as fh:
                    return fh.read(_SNIFF_BYTES)
        if suffix == ".zst":
            return None
        with open(path, "rb") as fh:
            return fh.read(_SNIFF_BYTES)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise TunerError(f"cannot read {source!r}: {exc}") from None


def _sniff_text(source: str, path: Path, kind: str, notes: list[str]) -> dict:
    """read_csv options for a delimited file, after refusing what is not a text table.

    Refused with one line: an empty file, binary content (Excel, Parquet, images, ...),
    JSON, HTML/XML. Guessed, with a note: the encoding when the file is not UTF-8 and
    the delimiter when the header has none of the expected one but another, consistently.
    """
    expected = _SUFFIXES[kind]
    options: dict = {"sep": expected}
    head = _head_bytes(source, path)
    if head is None:
        return options
    if not head.strip():
        raise TunerError(f"{source!r} is empty; give a file with a header row and at least one data row")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        options["encoding"] = "utf-16"
        text = head.decode("utf-16", errors="ignore")
        notes.append("read as UTF-16 text (byte-order mark)")
    else:
        if head.startswith(b"PAR1"):
            raise TunerError(f"{source!r} is a Parquet file, not {kind[1:].upper()}; rename it to .parquet")
        if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
            raise TunerError(f"{source!r} is not a {kind[1:].upper()} text file (it looks like an Excel workbook "
                             "or a zip archive); save it as CSV, or name a zipped CSV .csv.zip")
        controls = sum(b < 32 and b not in (9, 10, 13) for b in head[:4096])
        if b"\x00" in head or controls > 0.01 * min(len(head), 4096):
            raise TunerError(f"{source!r} is not a {kind[1:].upper()} text file (it holds binary bytes); "
                             "give a text table with a header row")
        text = head.decode("utf-8-sig", errors="replace")  # not UTF-8 at all: read_table retries as Latin-1
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        raise TunerError(f"{source!r} looks like JSON, not {kind[1:].upper()}; convert it to a table first, "
                         "e.g. pandas.read_json(path).to_csv('data.csv', index=False)")
    if stripped.startswith("<"):
        raise TunerError(f"{source!r} looks like HTML or XML, not {kind[1:].upper()}; give a text table with a header row")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(head) == _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of the sample may be cut short
    lines = lines[:50]
    if not lines or expected in lines[0]:
        return options
    for sep in (",", ";", "\t", "|"):
        if sep == expected:
            continue
        n = lines[0].count(sep)
        if n >= 1 and sum(ln.count(sep) == n for ln in lines) >= 0.9 * len(lines):
            options["sep"] = sep
            decimal = ""
            if sep == ";":  # a semicolon file from a spreadsheet often writes 1,5 for 1.5
                fields = [f.strip().strip('"') for ln in lines[1:] for f in ln.split(sep)]
                comma = sum(bool(re.fullmatch(r"[-+]?\d+,\d+", f)) for f in fields)
                point = sum(bool(re.fullmatch(r"[-+]?\d*\.\d+", f)) for f in fields)
                if comma and not point:
                    options["decimal"] = ","
                    decimal = " and ',' as the decimal mark"
            notes.append(f"the file is {_DELIMITERS[sep]}-separated, not {_DELIMITERS[expected]}-separated as "
                         f"its .{kind[1:]} name says: read with {sep!r} as the delimiter{decimal}")
            break
    return options


def _check_header(source: str, options: dict) -> None:
    """Refuse repeated column names (pandas would rename the second ``a`` to ``a.1``)."""
    header = pd.read_csv(source, header=None, nrows=1, dtype=str, keep_default_na=False,
                         **{k: v for k, v in options.items() if k != "decimal"})
    names = [str(v).strip() for v in header.iloc[0].tolist()] if len(header) else []
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated and name:
            repeated.append(name)
        seen.add(name)
    if repeated:
        shown = ", ".join(repr(n) for n in repeated[:10])
        raise TunerError(f"{source!r} repeats column name(s) {shown} in its header; give every column a unique name")


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
    columns: dict[str, pd.Series] = {}
    for c in schema.numeric:
        columns[c] = pd.to_numeric(X[c], errors="coerce").astype(float).replace([np.inf, -np.inf], np.nan)
    for c in schema.categorical:
        columns[c] = _normalise_categorical(X[c])
    return pd.DataFrame(columns, index=X.index, columns=schema.columns)  # one block: wide tables stay fast


# A text column whose values are at least this share numbers is numeric (the rest: missing).
NUMERIC_TEXT_SHARE = 0.95
_POSITIVE_METRICS = "precision, recall, f1 and roc_auc"


def _listing(items: list[str], limit: int = 10) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _is_text(col: pd.Series) -> bool:
    return (_is_categorical_dtype(col) and not pd.api.types.is_bool_dtype(col)
            and not isinstance(col.dtype, pd.CategoricalDtype))


MAX_MISSING_WORDS = 100  # distinct words of a numeric column remembered as missing


def _text_as_numbers(col: pd.Series) -> tuple[float, pd.Series | None, str, list[str]]:
    """(share of the non-missing values that are numbers, the column as floats or None, the other
    words shown, the other words as stripped text).

    The floats are given only when the share is at least ``NUMERIC_TEXT_SHARE`` (and below 1:
    a column of numbers alone is already numeric); its other values are then missing.
    """
    values = col.dropna()
    if not _is_text(col) or values.empty:
        return 0.0, None, "", []
    parsed = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    share = float(parsed.notna().mean())
    if not NUMERIC_TEXT_SHARE <= share < 1.0:
        return share, None, "", []
    words = values[parsed.isna()].astype(str).value_counts()
    shown = ", ".join(f"{w!r} ×{n}" for w, n in words.head(3).items()) + (" ..." if len(words) > 3 else "")
    out = np.full(len(col), np.nan)
    out[col.notna().to_numpy()] = parsed.to_numpy(dtype=float, na_value=np.nan)  # dropna keeps the order
    stripped = sorted({w.strip() for w in words.index})[:MAX_MISSING_WORDS]
    return share, pd.Series(out, index=col.index), shown, stripped


def _numbers_in_text(X: pd.DataFrame) -> tuple[pd.DataFrame, list[str], dict[str, list[str]]]:
    """Text columns that are numbers with a few stray words → numeric (the words missing); notes.

    A column where at least ``NUMERIC_TEXT_SHARE`` of the values parse as numbers is read
    as numeric and its other values become missing (imputed inside each fold). A column
    mixing numbers and text more evenly stays categorical, with a note.
    """
    as_numbers, mixed, converted, missing_words = [], [], {}, {}
    for name in X.columns:
        share, numbers, words, stripped = _text_as_numbers(X[name])
        if numbers is not None:
            converted[name] = numbers
            missing_words[name] = stripped
            as_numbers.append(f"{name} ({words})")
        elif 0.05 <= share < NUMERIC_TEXT_SHARE:
            mixed.append(f"{name} ({share:.0%} numbers)")
    notes = []
    if converted:
        X = X.copy()
        for name, values in converted.items():
            X[name] = values
        notes.append("read as numbers, their few text values treated as missing (imputed inside each fold): "
                     + _listing(as_numbers))
    if mixed:
        notes.append("columns mixing numbers and text, treated as categorical: " + _listing(mixed))
    return X, notes, missing_words


def _dropped_notes(dropped: dict[str, str]) -> list[str]:
    if len(dropped) <= 10:
        return [f"dropped column {name!r}: {why}" for name, why in dropped.items()]
    by_reason: dict[str, list[str]] = {}
    for name, why in dropped.items():
        by_reason.setdefault(why, []).append(repr(name))
    return [f"dropped {len(names)} column(s), {why}: {_listing(names)}" for why, names in by_reason.items()]


def _check_target_values(df: pd.DataFrame, target: str) -> None:
    col = df[target]
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        values = col.to_numpy(dtype=float, na_value=np.nan)
        bad = np.flatnonzero(np.isinf(values))
        if bad.size:
            raise TunerError(f"target {target!r} holds {bad.size} infinite value(s) (first in data row {bad[0] + 1}); "
                             "remove or correct those rows")


def _same_label(label, wanted) -> bool:
    if isinstance(wanted, str) and not isinstance(label, str):
        if isinstance(label, bool):
            return wanted.strip().lower() == str(label).lower()
        try:
            return float(wanted) == float(label)
        except (TypeError, ValueError):
            return False
    return label == wanted and isinstance(label, bool) == isinstance(wanted, bool)


def _positive_class(y: np.ndarray, classes: list, task: str, target: str, pos_label) -> tuple[np.ndarray, list, str | None]:
    """Order binary classes so the positive one is code 1 (what the binary metrics score); the note."""
    if pos_label is not None and task != "binary":
        raise TunerError(f"--pos-label applies to binary targets only; {target!r} is a {task} target"
                         + (f" with {len(classes)} classes" if task == "multiclass" else "") + "; drop --pos-label")
    if task != "binary":
        return y, classes, None
    if pos_label is None:
        return y, classes, (f"positive class for {_POSITIVE_METRICS}: {classes[1]!r} (the second of the sorted "
                            f"labels; to score {classes[0]!r} as positive, pass --pos-label {shlex.quote(str(classes[0]))})")
    match = [c for c in classes if _same_label(c, pos_label)]
    if not match:
        raise TunerError(f"--pos-label {pos_label!r} is not a class of target {target!r}; its classes are "
                         f"{', '.join(map(repr, classes))}")
    if classes.index(match[0]) == 0:
        y, classes = (1 - y).astype(np.int64), [classes[1], classes[0]]
    return y, classes, f"positive class for {_POSITIVE_METRICS}: {classes[1]!r} (set by --pos-label)"


def run_pos_label(config):
    """The positive class a run was made with (binary runs), to re-encode its data the same way."""
    if getattr(config, "task", None) == "binary" and len(getattr(config, "classes", []) or []) == 2:
        return config.classes[1]
    return None


def prepare(
    df: pd.DataFrame, target: str, task: str = "auto", *, source: str = "", min_rows: int = 10,
    pos_label=None,
) -> Dataset:
    """Split off the target, infer task and schema, drop what cannot help.

    ``pos_label``: for a binary target, the class that binary metrics score as positive
    (code 1); default: the second of the sorted labels.
    """
    notes: list[str] = list(df.attrs.get(NOTES_ATTR, []))
    if df.columns.duplicated().any():
        repeated = list(dict.fromkeys(map(str, df.columns[df.columns.duplicated()])))
        raise TunerError(f"column name(s) {_listing([repr(c) for c in repeated])} appear more than once; "
                         "give every column a unique name")
    if target not in df.columns:
        close = [c for c in df.columns if str(c).lower() == target.lower()]
        hint = f" (did you mean {close[0]!r}?)" if close else f"; columns are: {', '.join(map(str, df.columns[:20]))}"
        raise TunerError(f"target column {target!r} is not in the data{hint}")
    fp = fingerprint(df)
    _, numbers, words, _ = _text_as_numbers(df[target])
    if numbers is not None:  # numbers with a few stray words ('?', 'unknown'): those rows have no target
        df = df.copy()
        df[target] = numbers
        notes.append(f"target {target!r} is numbers with a few text values ({words}): read as numbers, "
                     "those rows as missing targets")
    missing = df[target].isna()
    if missing.all():
        raise TunerError(f"target column {target!r} is empty in every row; choose another --target")
    _check_target_values(df, target)
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
    y, classes, positive = _positive_class(y, classes, task, target, pos_label)
    if len(df) < min_rows:
        raise TunerError(f"only {len(df)} row(s) with a target; at least {min_rows} are needed to cross-validate")
    if task != "regression":
        counts = np.bincount(y, minlength=len(classes))
        lonely = [repr(classes[i]) for i in np.flatnonzero(counts < 2)]
        if lonely:
            which = f"class {lonely[0]} of target {target!r} has" if len(lonely) == 1 else \
                f"classes {_listing(lonely)} of target {target!r} have"
            raise TunerError(f"{which} a single row; cross-validation needs "
                             "at least 2 rows of every class (and --cv at most the rarest class's count): "
                             "remove those rows or merge them into another class")

    X = df.drop(columns=[target])
    X, text_notes, missing_words = _numbers_in_text(X)
    dropped, dates = {}, []
    for name in X.columns:
        why = _useless_reason(name, X[name], len(X))
        if why and why.startswith("identifier") and _is_categorical_dtype(X[name]) and looks_like_dates(X[name]):
            why = None  # a timestamp per row is not an identifier: it becomes calendar features
        if why:
            dropped[name] = why
        elif _is_categorical_dtype(X[name]) and not pd.api.types.is_bool_dtype(X[name]) and looks_like_dates(X[name]):
            dates.append(name)
    notes += text_notes + _dropped_notes(dropped)
    X = X.drop(columns=list(dropped))
    if X.shape[1] == 0:
        raise TunerError("no usable feature columns are left after dropping constant, empty and identifier columns")
    categorical = [c for c in X.columns if _is_categorical_dtype(X[c])]
    numeric = [c for c in X.columns if c not in categorical]
    infinite = {}
    for c in numeric:
        values = pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        n_inf = int(np.isinf(values).sum())
        if n_inf:
            infinite[c] = n_inf
    if infinite:
        notes.append(f"treated {sum(infinite.values())} infinite value(s) as missing (imputed inside each fold): "
                     + _listing([f"{c} ({n})" for c, n in infinite.items()]))
    schema = Schema(numeric=numeric, categorical=categorical, datetime=dates,
                    missing_words={c: w for c, w in missing_words.items() if c in numeric})
    X = coerce_features(X, schema)
    schema.categories = {c: sorted(X[c].dropna().unique().tolist()) for c in schema.encoded}
    encoded = schema.encoded
    if encoded:
        kinds = ", ".join(f"{c} ({_dtype_name(df[c])})" for c in encoded[:10])
        more = f" and {len(encoded) - 10} more" if len(encoded) > 10 else ""
        notes.append(f"categorical columns: {kinds}{more}")
        from tuner.data.preprocessing import MAX_ONEHOT_CATEGORIES

        many = [f"{c} ({len(schema.categories[c])})" for c in encoded if len(schema.categories[c]) > MAX_ONEHOT_CATEGORIES]
        if many:
            notes.append(f"categorical columns with more than {MAX_ONEHOT_CATEGORIES} distinct values: {_listing(many)}; "
                         f"one-hot encoding (linear models, SVMs, networks) keeps the {MAX_ONEHOT_CATEGORIES - 1} most "
                         "frequent values of each and pools the rest in one column; trees use ordinal codes")
    if dates:
        notes.append(f"date/time columns, expanded into year, month, day, weekday, hour and days since 1970: "
                     f"{', '.join(dates)}")
    if positive:
        notes.append(positive)
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
            raise TunerError(f"target {target!r} holds infinite values; remove or correct those rows")
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
    ds = prepare(frame, config.target, config.task, source=config.source, pos_label=run_pos_label(config))
    if ds.fingerprint != config.fingerprint:
        raise TunerError(
            f"the data at {config.source} changed since run {config.run!r} was made "
            f"(fingerprint {ds.fingerprint[:12]} vs {config.fingerprint[:12]}); restore it or start a new run"
        )
    return ds
