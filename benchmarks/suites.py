"""The dataset suites of ``benchmarks.compare`` and the outer splits every peer gets.

Two suites, each a folder with an ``INDEX.tsv`` (columns ``name``, ``task``, optional
``target_column``) and one data file per dataset:

- ``pmlb``: ``<name>.tsv.gz``, target column ``target`` (``--data-dir``, ``$TUNER_PMLB_DIR``,
  ``../shared/datasets/pmlb`` beside the repository, ``/work/shared/datasets/pmlb``);
- ``mixed``: ``<name>.csv.gz`` as their publishers shipped them (text categories, yes/no
  strings, missing cells as ``NA`` or empty), target named by ``target_column``
  (``--mixed-dir``, ``$TUNER_MIXED_DIR``, ``../shared/datasets/mixed``, ``/work/shared/datasets/mixed``).

Text stays text and missing cells stay missing: nothing is coerced here, each peer
prepares the data its own way. The target is renamed ``target`` (the peer protocol's
name) when the splits are written; rows without a target are dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks.scoring import HEADLINE

REPO = Path(__file__).resolve().parents[1]
TARGET = "target"
SUITES = ("pmlb", "mixed")
BIG_ROWS = 5000  # datasets with at least this many rows get only the first seed (unless --all-seeds)
_ENV = {"pmlb": "TUNER_PMLB_DIR", "mixed": "TUNER_MIXED_DIR"}
MISSING = ["", "NA"]  # the mixed suite's missing cells; any other text is a value


@dataclass
class Dataset:
    suite: str
    name: str
    task: str
    target: str  # the target column in the file
    path: Path


def find_suite_dir(suite: str, given: str | Path | None) -> Path | None:
    """The suite's folder (with INDEX.tsv), or None when there is none."""
    candidates = [given] if given else [
        os.environ.get(_ENV[suite]), REPO.parent / "shared/datasets" / suite, Path("/work/shared/datasets") / suite,
    ]
    for c in candidates:
        if c and Path(c, "INDEX.tsv").exists():
            return Path(c)
    return None


def find_data_dir(given: str | None) -> Path:
    """The PMLB folder (kept for callers of the single-suite API)."""
    found = find_suite_dir("pmlb", given)
    if found is None:
        raise SystemExit(f"no INDEX.tsv in {given or 'the default PMLB folders'}: pass --data-dir "
                         "(a folder of <name>.tsv.gz files with INDEX.tsv)")
    return found


def read_index(data_dir: Path) -> pd.DataFrame:
    index = pd.read_csv(data_dir / "INDEX.tsv", sep="\t", dtype={"name": str})
    missing = {"name", "task"} - set(index.columns)
    if missing:
        raise SystemExit(f"{data_dir / 'INDEX.tsv'} lacks column(s) {', '.join(sorted(missing))}")
    bad = index.loc[~index["task"].isin(list(HEADLINE)), "name"].tolist()
    if bad:
        raise SystemExit(f"INDEX.tsv: unknown task for {', '.join(bad)} (binary, multiclass or regression)")
    return index.set_index("name", drop=False)


def dataset_file(data_dir: Path, name: str) -> Path:
    for suffix in (".tsv.gz", ".tsv", ".csv.gz", ".csv", ".parquet"):
        p = data_dir / f"{name}{suffix}"
        if p.exists():
            return p
    raise FileNotFoundError(f"no data file for {name!r} in {data_dir}")


def read_dataset(path: Path) -> pd.DataFrame:
    """The table as shipped: only empty cells and ``NA`` are missing; text columns stay text."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    sep = "," if ".csv" in path.suffixes else "\t"
    return pd.read_csv(path, sep=sep, keep_default_na=False, na_values=MISSING)


def list_datasets(suite_arg: str, names: list[str] | None, dirs: dict[str, str | None]) -> list[Dataset]:
    """The datasets to run: every one in the chosen suites' INDEX.tsv, or those named.

    A suite whose folder is missing is skipped with a message when another suite is run
    (``--suite both``) and is an error when it is the only one; a named dataset found in
    no suite is an error.
    """
    suites = SUITES if suite_arg == "both" else (suite_arg,)
    found: list[Dataset] = []
    seen: set[str] = set()
    for suite in suites:
        folder = find_suite_dir(suite, dirs.get(suite))
        if folder is None:
            where = dirs.get(suite) or f"${_ENV[suite]}, ../shared/datasets/{suite}, /work/shared/datasets/{suite}"
            message = f"suite {suite!r}: no INDEX.tsv in {where}"
            if len(suites) == 1:
                raise SystemExit(message + f" (pass --{'data' if suite == 'pmlb' else 'mixed'}-dir)")
            print(message + ": skipped", flush=True)
            continue
        index = read_index(folder)
        for name, row in index.iterrows():
            if names is not None and name not in names:
                continue
            if name in seen:
                raise SystemExit(f"dataset {name!r} is in two suites: pick one with --suite")
            target = row.get("target_column") if "target_column" in index.columns else None
            target = TARGET if target is None or pd.isna(target) or not str(target) else str(target)
            try:
                path = dataset_file(folder, name)
            except FileNotFoundError as exc:
                print(f"{exc}: skipped", flush=True)
                continue
            found.append(Dataset(suite, name, row["task"], target, path))
            seen.add(name)
    if names is not None:
        unknown = [n for n in names if n not in seen]
        if unknown:
            raise SystemExit(f"not in the INDEX.tsv of suite(s) {', '.join(suites)} (or no data file): "
                             f"{', '.join(unknown)}")
        found.sort(key=lambda d: names.index(d.name))
    return found


def load_dataset(ds: Dataset) -> pd.DataFrame:
    """The table with its target renamed ``target`` (a feature already called so becomes ``target_feature``)."""
    df = read_dataset(ds.path)
    if ds.target not in df.columns:
        raise ValueError(f"{ds.name}: no target column {ds.target!r} (columns: {', '.join(map(str, df.columns[:20]))})")
    if ds.target != TARGET:
        df = df.rename(columns={TARGET: f"{TARGET}_feature"}).rename(columns={ds.target: TARGET})
    return df


def _stratify(y: pd.Series, task: str):
    if task == "regression":
        return None
    counts = y.value_counts()
    return y if counts.min() >= 2 else None  # a singleton class cannot be stratified


def usable(df: pd.DataFrame, task: str, seed: int, max_rows: int | None) -> pd.DataFrame:
    """Rows with a target, subsampled to ``max_rows`` (stratified, seeded) when larger."""
    from sklearn.model_selection import train_test_split

    df = df[df[TARGET].notna()].reset_index(drop=True)
    if max_rows and len(df) > max_rows:
        df, _ = train_test_split(df, train_size=max_rows, random_state=seed, stratify=_stratify(df[TARGET], task))
    return df


def split(df: pd.DataFrame, task: str, seed: int, max_rows: int | None, test_size: float = 0.25):
    """(train, test): the one outer split every peer gets for this seed."""
    from sklearn.model_selection import train_test_split

    df = usable(df, task, seed, max_rows)
    train, test = train_test_split(df, test_size=test_size, random_state=seed, stratify=_stratify(df[TARGET], task))
    return train.reset_index(drop=True), test.reset_index(drop=True)


def seeds_for(n_rows: int, seeds: list[int], all_seeds: bool) -> list[int]:
    """Every seed below ``BIG_ROWS`` rows (or with ``all_seeds``); only the first one from there on."""
    return list(seeds) if all_seeds or n_rows < BIG_ROWS else list(seeds[:1])


def write_split(train: pd.DataFrame, test: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """``train.parquet`` (features + target), ``test.parquet`` (the same, scored here) and
    ``test_X.parquet`` (holdout features only: what the peers get)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: folder / f"{k}.parquet" for k in ("train", "test", "test_X")}
    train.to_parquet(paths["train"], index=False)
    test.to_parquet(paths["test"], index=False)
    test.drop(columns=[TARGET]).to_parquet(paths["test_X"], index=False)
    return paths
