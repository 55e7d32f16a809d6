"""Predict a file with a loaded model, reading and writing in chunks so memory stays flat.

Output: CSV with a column ``prediction`` (labels as in the training data, or values) and,
with ``proba``, one column ``proba_<class>`` per class in the model card's order; rows in
input order.
"""

from __future__ import annotations

import gzip
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from tuner.data.inputs import NA_TEXT, check_columns
from tuner.errors import TunerError

DEFAULT_CHUNK_ROWS = 50_000


@dataclass
class PredictStats:
    rows: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def _kind(source: str) -> str:
    if source.startswith("builtin:"):
        return "builtin"
    suffixes = [s.lower() for s in Path(source).suffixes]
    if suffixes and suffixes[-1] in {".gz", ".bz2", ".zip", ".xz", ".zst"}:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind in {".csv", ".tsv", ".txt", ".parquet", ".pq"}:
        return kind
    raise TunerError(f"unknown data format for {source!r}; use a .csv, .tsv or .parquet file (optionally .gz)")


def iter_chunks(source: str, schema, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> tuple[list[str], Iterator[pd.DataFrame]]:
    """(notes about the columns, iterator of frames holding only the model's columns)."""
    kind = _kind(source)
    if kind == "builtin":
        from tuner.data.dataset import read_table

        frame = read_table(source)
        return check_columns(frame.columns, schema), iter([frame])
    path = Path(source)
    if not path.exists():
        raise TunerError(f"data file not found: {source}; check the path")
    if kind in {".parquet", ".pq"}:
        return _parquet_chunks(path, schema, chunk_rows)
    sep = "," if kind == ".csv" else "\t"
    try:
        header = pd.read_csv(path, sep=sep, nrows=0)
    except pd.errors.EmptyDataError:
        raise _empty(source, schema) from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise TunerError(f"cannot read {source!r} as {kind[1:].upper()}: {_first_line(exc)}") from None
    original = {str(c).strip(): c for c in header.columns}
    notes = check_columns(list(original), schema)
    usecols = [original[c] for c in schema.columns]
    # Numeric columns: pandas' missing-value words are NaN, as in training. Text columns are
    # read as they are: inputs.coerce makes blanks and those words missing unless training saw
    # them as a category (the same rule as for a DataFrame or a JSON body).
    reader = pd.read_csv(path, sep=sep, usecols=usecols, chunksize=chunk_rows, low_memory=False,
                         dtype={original[c]: str for c in schema.categorical}, keep_default_na=False,
                         na_values={original[c]: sorted(NA_TEXT) for c in schema.numeric})

    def chunks():
        try:
            for chunk in reader:
                chunk.columns = [str(c).strip() for c in chunk.columns]
                yield chunk
        except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise TunerError(f"cannot read {source!r}: {_first_line(exc)}") from None
        finally:
            reader.close()

    return notes, chunks()


def _parquet_chunks(path: Path, schema, chunk_rows: int):
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise _empty(str(path), schema)
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types for a damaged file
        raise TunerError(f"cannot read {str(path)!r} as Parquet: {_first_line(exc)}") from None
    names = pf.schema_arrow.names
    original = {str(c).strip(): c for c in names}
    notes = check_columns(list(original), schema)
    columns = [original[c] for c in schema.columns]

    def chunks():
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
            frame = batch.to_pandas()
            frame.columns = [str(c).strip() for c in frame.columns]
            yield frame

    return notes, chunks()


def _empty(source: str, schema) -> TunerError:
    return TunerError(f"{source!r} is empty: no header row, no data; nothing to predict "
                      f"(the model needs the columns {', '.join(schema.columns[:30])}"
                      f"{' ...' if len(schema.columns) > 30 else ''})")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _open_out(out: str | Path | None):
    if out is None or str(out) == "-":
        return sys.stdout, False
    path = Path(out)
    if path.parent and not path.parent.exists():
        raise TunerError(f"cannot write {out}: folder {path.parent} does not exist")
    try:
        if path.suffix.lower() == ".gz":
            return gzip.open(path, "wt", encoding="utf-8", newline=""), True
        return open(path, "w", encoding="utf-8", newline=""), True
    except OSError as exc:
        raise TunerError(f"cannot write {out}: {exc.strerror}") from None


def output_frame(model, result) -> pd.DataFrame:
    frame = pd.DataFrame({"prediction": result.predictions})
    if result.probabilities is not None:
        for j, name in enumerate(model.proba_columns):
            frame[name] = result.probabilities[:, j]
    return frame


def predict_file(
    model, source: str, out: str | Path | None = None, *, proba: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS, on_note: Callable[[str], None] | None = None,
    threshold: float | None = None,
) -> PredictStats:
    """Predict every row of ``source`` with ``model`` (a LoadedModel) and write CSV to ``out`` (stdout if None);
    ``threshold``: a binary model's cut instead of its card's."""
    if proba and not model.is_classifier:
        raise TunerError("--proba is for classification models; this model does regression")
    if chunk_rows < 1:
        raise TunerError(f"--chunk-rows must be at least 1 (got {chunk_rows})")
    stats = PredictStats()
    notes, chunks = iter_chunks(source, model.schema, chunk_rows)
    seen_notes = set()

    def note(text: str) -> None:
        # once per column (unseen categories, out-of-range numbers) or once per file (rows without a prediction)
        per_chunk = ("not seen in training", "out-of-range value", "have no prediction")
        key = text.split(":")[0] if any(p in text for p in per_chunk) else text
        if "have no prediction" in text:
            key = "no prediction"
        if key not in seen_notes:
            seen_notes.add(key)
            stats.notes.append(text)
            if on_note is not None:
                on_note(text)

    for text in notes:
        note(text)
    start = time.perf_counter()
    fh, close = _open_out(out)
    try:
        header = True
        for chunk in chunks:
            if len(chunk) == 0:
                continue
            result = model.predict_batch(chunk, proba=proba, row_offset=stats.rows, threshold=threshold)
            for text in result.notes:
                note(text)
            output_frame(model, result).to_csv(fh, header=header, index=False)
            header = False
            stats.rows += len(chunk)
        if stats.rows == 0:  # a header without rows: the output is a header without rows
            note("the input has no data rows; the output holds only the header")
            cols = ["prediction"] + (model.proba_columns if proba else [])
            fh.write(",".join(cols) + "\n")
    finally:
        if close:
            fh.close()
        else:
            fh.flush()
    stats.seconds = time.perf_counter() - start
    return stats


__all__ = ["predict_file", "iter_chunks", "PredictStats", "DEFAULT_CHUNK_ROWS", "output_frame"]
