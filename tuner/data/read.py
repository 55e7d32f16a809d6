"""Read a table into a DataFrame: CSV / TSV / Parquet files (compressed too), URLs, or a
built-in demo dataset, and fingerprint it.

Why a module of its own: file formats are where real data goes wrong first (a wrong
delimiter, a non-UTF-8 encoding, an Excel file named .csv, repeated column names); each
such case is refused or read with a note here, before anything is inferred from the data.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from tuner.errors import TunerError

BUILTINS = {
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
    "iris": "load_iris",
    "diabetes": "load_diabetes",
    "digits": "load_digits",
}
_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".parquet": None, ".pq": None}


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
