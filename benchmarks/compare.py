"""Side-by-side benchmark of ``tuner`` against its peers at equal wall-clock budget.

    python -m benchmarks.compare --budget 60 --peers tuner,flaml,optuna_baseline --out results/
    python -m benchmarks.compare --budget 10 --datasets phoneme,560_bodyfat --max-rows 2000 --out /tmp/quick

For every dataset (a PMLB ``<name>.tsv.gz`` with a ``target`` column, listed in
``INDEX.tsv`` with its task):

- one outer split, the same for every peer: 75 % train / 25 % holdout, stratified for
  classification, seeded (``--seed``); written to ``<out>/splits/<dataset>/``;
- each peer runs in its own process (``python -m benchmarks.peers.<peer>``), one at a
  time, with every core (``--cores``), and gets the training rows and the holdout
  *features*; its budget covers the whole process (start-up, search, final refit,
  prediction); it is killed at ``--kill-factor`` × budget + ``--kill-margin`` seconds and
  then reported as ``timeout``; a crash is reported as ``failed``; neither stops the benchmark;
- the peer writes its holdout predictions (``<out>/preds/<dataset>/<peer>.json``), scored
  here, never by the peer: ROC-AUC (binary), accuracy (multiclass), R² (regression) as the
  headline, plus F1 (binary; macro for multiclass) and RMSE;
- wall time is measured from process start to exit; peak memory is the peer process's
  peak resident set plus what its worker processes hold, polled every 0.1 s.

Outputs in ``--out``: ``results.csv`` (one row per dataset × peer), ``results.md``
(per-dataset scores, then wins, mean normalised score, wall time and memory per peer) and
``results.png`` (normalised score per dataset and peer). They are rewritten after each
dataset, so an interrupted benchmark keeps what it finished.

The normalised score on a dataset is (score − constant) / (best seen − constant), where
the constant predictor scores 0.5 ROC-AUC, the holdout share of the training majority
class in accuracy and 0 R²; a failed run counts as 0 (as good as a constant). Scores
within ``TIE`` of each other are ties.

Peers are given by name (``tuner``, ``flaml``, ``optuna_baseline``) or as ``name=module``
/ ``name=path/to/script.py`` for any program following the protocol of
``benchmarks.peers._common``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.peers import PEERS

REPO = Path(__file__).resolve().parents[1]
HEADLINE = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}
SECONDARY = {"binary": "f1", "multiclass": "f1", "regression": "rmse"}
METRIC_COLUMNS = ["roc_auc", "accuracy", "f1", "r2", "rmse"]
TIE = 0.002
ON_TIME = 1.10  # a run is on time when its wall time is within this factor of the budget
TARGET = "target"
POLL_S = 0.1


# --------------------------------------------------------------------------- datasets

def find_data_dir(given: str | None) -> Path:
    candidates = [given] if given else [
        os.environ.get("TUNER_PMLB_DIR"), REPO.parent / "shared/datasets/pmlb", Path("/work/shared/datasets/pmlb"),
    ]
    for c in candidates:
        if c and Path(c, "INDEX.tsv").exists():
            return Path(c)
    where = given or ", ".join(str(c) for c in candidates if c)
    raise SystemExit(f"no INDEX.tsv in {where}: pass --data-dir (a folder of <name>.tsv.gz files with INDEX.tsv)")


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
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    sep = "," if ".csv" in path.suffixes else "\t"
    return pd.read_csv(path, sep=sep)


def _stratify(y: pd.Series, task: str):
    if task == "regression":
        return None
    counts = y.value_counts()
    return y if counts.min() >= 2 else None  # a singleton class cannot be stratified


def split(df: pd.DataFrame, task: str, seed: int, max_rows: int | None, test_size: float = 0.25):
    """(train, test): the one outer split every peer gets."""
    from sklearn.model_selection import train_test_split

    df = df[df[TARGET].notna()].reset_index(drop=True)
    if max_rows and len(df) > max_rows:
        df, _ = train_test_split(df, train_size=max_rows, random_state=seed, stratify=_stratify(df[TARGET], task))
    train, test = train_test_split(df, test_size=test_size, random_state=seed, stratify=_stratify(df[TARGET], task))
    return train.reset_index(drop=True), test.reset_index(drop=True)


# --------------------------------------------------------------------------- scoring

def _key(v) -> str:
    """Labels compared by their text: a JSON round trip turns numpy ints into ints, etc."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def classes_of(y_train: pd.Series) -> list[str]:
    """Class keys in sorted order (the order of ``proba`` columns after :func:`aligned_proba`)."""
    keys = {_key(v) for v in y_train.tolist()}
    try:
        return sorted(keys, key=float)
    except ValueError:
        return sorted(keys)


def aligned_proba(preds: dict, classes: list[str]) -> np.ndarray | None:
    if preds.get("proba") is None:
        return None
    proba = np.asarray(preds["proba"], dtype=float)
    cols = [_key(c) for c in preds["proba_classes"]]
    out = np.zeros((proba.shape[0], len(classes)))
    for j, c in enumerate(cols):
        if c in classes:
            out[:, classes.index(c)] = proba[:, j]
    return out


def score(task: str, y_test: pd.Series, preds: dict, classes: list[str] | None = None) -> dict:
    """Every metric of the task from a peer's predictions (see ``benchmarks.peers._common``)."""
    from sklearn import metrics as skm

    out = {m: np.nan for m in METRIC_COLUMNS}
    n = len(y_test)
    if task == "regression":
        values = np.asarray(preds["values"], dtype=float)
        if values.shape != (n,):
            raise ValueError(f"expected {n} predicted values, got shape {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError("predictions contain NaN or infinite values")
        y = y_test.to_numpy(dtype=float)
        out["r2"] = skm.r2_score(y, values)
        out["rmse"] = skm.root_mean_squared_error(y, values)
        return out
    classes = classes or classes_of(y_test)
    y = np.array([_key(v) for v in y_test.tolist()], dtype=object)
    labels = np.array([_key(v) for v in preds["labels"]], dtype=object)
    if labels.shape != (n,):
        raise ValueError(f"expected {n} predicted labels, got shape {labels.shape}")
    out["accuracy"] = skm.accuracy_score(y, labels)
    if task == "binary":
        positive = classes[1]
        out["f1"] = skm.f1_score(y, labels, pos_label=positive, zero_division=0)
        proba = aligned_proba(preds, classes)
        if proba is not None:
            s = proba[:, 1]
        elif preds.get("decision") is not None:
            s = np.asarray(preds["decision"], dtype=float)
            if _key(preds["proba_classes"][1]) != positive:
                s = -s
        else:
            raise ValueError("a binary peer must give proba or decision scores (ROC-AUC)")
        if len(set(y)) == 2:
            out["roc_auc"] = skm.roc_auc_score(y == positive, s)
    else:
        out["f1"] = skm.f1_score(y, labels, labels=classes, average="macro", zero_division=0)
        proba = aligned_proba(preds, classes)
        present = [c for c in classes if c in set(y)]
        if proba is not None and len(present) == len(classes):
            try:
                out["roc_auc"] = skm.roc_auc_score(y, proba / np.clip(proba.sum(1, keepdims=True), 1e-12, None),
                                                   multi_class="ovr", labels=classes)
            except ValueError:
                pass
    return out


def constant_score(task: str, y_train: pd.Series, y_test: pd.Series) -> float:
    """Headline score of a constant predictor: prior probabilities, majority class, the mean."""
    if task == "binary":
        return 0.5
    if task == "multiclass":
        majority = _key(y_train.value_counts().idxmax())
        return float(np.mean([_key(v) == majority for v in y_test.tolist()]))
    return 0.0


# --------------------------------------------------------------------------- running a peer

@dataclass
class Peer:
    name: str
    command: list[str]


def resolve_peers(text: str) -> list[Peer]:
    peers = []
    for spec in [s.strip() for s in text.split(",") if s.strip()]:
        name, _, where = spec.partition("=")
        if not where:
            if name not in PEERS:
                raise SystemExit(f"unknown peer {name!r}; known: {', '.join(PEERS)} (or name=module / name=script.py)")
            where = PEERS[name]
        if where.endswith(".py"):
            script = Path(where).resolve()
            if not script.exists():
                raise SystemExit(f"peer {name!r}: no such script {script}")
            cmd = [sys.executable, str(script)]
        else:
            cmd = [sys.executable, "-m", where]
        peers.append(Peer(name, cmd))
    names = [p.name for p in peers]
    if len(set(names)) != len(names):
        raise SystemExit(f"a peer is listed twice: {', '.join(names)}")
    return peers


def _hwm(pid: int) -> int:
    """Peak resident bytes of one process so far (Linux ``VmHWM``; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _tree_memory(pid: int) -> int:
    """Bytes held by the peer: its own peak resident set (``VmHWM``) plus what its child
    processes (workers) hold right now (psutil; 0 for them when psutil is missing).

    ``ru_maxrss`` is no use here: the kernel carries the parent's peak across fork + exec.
    """
    total = _hwm(pid)
    try:
        import psutil
    except ImportError:
        return total
    try:
        root = psutil.Process(pid)
        children = root.children(recursive=True)
        if not total:
            total = root.memory_info().rss
    except psutil.Error:
        return total
    for p in children:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_peer(peer: Peer, *, train: Path, test_X: Path, task: str, budget: float, seed: int, cores: int,
             out: Path, log: Path, kill_after: float) -> dict:
    """Run one peer to completion (or kill it); wall time, peak memory, exit status."""
    out.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    path = [str(REPO), os.getcwd(), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys(path)), MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    with tempfile.TemporaryDirectory(prefix=f"bench-{peer.name}-") as work, open(log, "w") as logf:
        start_epoch = time.time()
        cmd = peer.command + [
            "--train", str(train), "--test", str(test_X), "--task", task, "--metric", HEADLINE[task],
            "--budget", f"{budget:g}", "--deadline", f"{start_epoch + budget:.3f}", "--seed", str(seed),
            "--n-jobs", str(cores), "--workdir", work, "--out", str(out),
        ]
        logf.write("$ " + shlex.join(cmd) + "\n")
        logf.flush()
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        peak, killed, status = 0, False, 0
        try:
            while True:
                pid, status = os.waitpid(proc.pid, os.WNOHANG)
                if pid:
                    break
                peak = max(peak, _tree_memory(proc.pid))
                if time.monotonic() - start > kill_after:
                    killed = True
                    _kill_group(proc.pid)
                    _, status = os.waitpid(proc.pid, 0)
                    break
                time.sleep(POLL_S)
        except BaseException:  # Ctrl-C: take the peer (and its workers) down too
            _kill_group(proc.pid)
            raise
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        _kill_group(proc.pid)  # workers the peer left behind
    return {"wall_s": wall, "peak_mb": peak / 2**20, "returncode": proc.returncode, "killed": killed}


_EXC = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b.*")


def _log_reason(log: Path) -> str:
    """The last exception line of a peer's log (or its last line)."""
    try:
        text = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    for ln in reversed(text):
        if _EXC.match(ln):
            return ln[:300]
    return text[-1][:300] if text else ""


# --------------------------------------------------------------------------- one dataset

def run_dataset(name: str, meta: pd.Series, data_dir: Path, peers: list[Peer], args, out: Path) -> list[dict]:
    task = meta["task"]
    df = read_dataset(dataset_file(data_dir, name))
    if TARGET not in df.columns:
        raise SystemExit(f"{name}: no {TARGET!r} column")
    train, test = split(df, task, args.seed, args.max_rows)
    split_dir = out / "splits" / name
    split_dir.mkdir(parents=True, exist_ok=True)
    train.to_parquet(split_dir / "train.parquet", index=False)
    test.to_parquet(split_dir / "test.parquet", index=False)
    test.drop(columns=[TARGET]).to_parquet(split_dir / "test_X.parquet", index=False)
    classes = classes_of(train[TARGET]) if task != "regression" else None
    base = {
        "dataset": name, "task": task, "rows": len(train) + len(test), "features": df.shape[1] - 1,
        "n_train": len(train), "n_test": len(test), "metric": HEADLINE[task],
        "constant": constant_score(task, train[TARGET], test[TARGET]), "budget_s": args.budget,
    }
    rows = []
    for peer in peers:
        preds_path = out / "preds" / name / f"{peer.name}.json"
        log = out / "logs" / f"{name}__{peer.name}.log"
        kill_after = args.kill_factor * args.budget + args.kill_margin
        print(f"[{name}] {peer.name}: running (budget {args.budget:g}s, killed after {kill_after:g}s)", flush=True)
        ran = run_peer(peer, train=split_dir / "train.parquet", test_X=split_dir / "test_X.parquet", task=task,
                       budget=args.budget, seed=args.seed, cores=args.cores, out=preds_path, log=log,
                       kill_after=kill_after)
        row = {**base, "peer": peer.name, "status": "ok", "error": "", **{m: np.nan for m in METRIC_COLUMNS},
               "score": np.nan, "wall_s": round(ran["wall_s"], 2), "peak_mb": round(ran["peak_mb"], 1),
               "on_time": ran["wall_s"] <= ON_TIME * args.budget, "returncode": ran["returncode"],
               "model": "", "info": "", "preds": str(preds_path.relative_to(out)), "log": str(log.relative_to(out))}
        if ran["killed"]:
            row.update(status="timeout", error=f"killed after {kill_after:g}s")
        elif ran["returncode"] != 0:
            row.update(status="failed", error=f"exit code {ran['returncode']}: {_log_reason(log)}")
        else:
            try:
                preds = json.loads(preds_path.read_text())
                scores = score(task, test[TARGET], preds, classes)
                row.update(scores, score=scores[HEADLINE[task]], model=str(preds.get("info", {}).get("model", "")),
                           info=json.dumps(preds.get("info", {}), default=str))
                if not np.isfinite(row["score"]):
                    raise ValueError(f"{HEADLINE[task]} could not be computed from the predictions")
            except Exception as exc:  # missing / malformed predictions
                row.update(status="failed", error=f"bad predictions: {type(exc).__name__}: {exc}"[:400])
        shown = f"{row['metric']}={row['score']:.4f}" if row["status"] == "ok" else f"{row['status'].upper()} {row['error']}"
        print(f"[{name}] {peer.name}: {shown}  wall {row['wall_s']:.1f}s  peak {row['peak_mb']:.0f} MB", flush=True)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- summary

def add_normalised(results: pd.DataFrame) -> pd.DataFrame:
    """``best`` (best score seen on the dataset) and ``normalised`` (failed runs: 0)."""
    results = results.copy()
    ok = results["status"] == "ok"
    best = results[ok].groupby("dataset")["score"].max()
    results["best"] = results["dataset"].map(best)
    span = results["best"] - results["constant"]
    norm = (results["score"] - results["constant"]) / span.where(span > 1e-12)
    results["normalised"] = np.where(ok, norm, 0.0)
    results["normalised"] = results["normalised"].astype(float)
    return results


def peer_summary(results: pd.DataFrame, peers: list[str]) -> pd.DataFrame:
    rows = []
    for peer in peers:
        r = results[results["peer"] == peer]
        ok = r[r["status"] == "ok"]
        wins = ties = 0
        for ds, g in results[results["status"] == "ok"].groupby("dataset"):
            top = g[g["score"] >= g["score"].max() - TIE]["peer"].tolist()
            if peer in top:
                if len(top) == 1:
                    wins += 1
                else:
                    ties += 1
        rows.append({
            "peer": peer, "datasets": len(r), "ok": len(ok), "failed": int((r["status"] != "ok").sum()),
            "mean_normalised": r["normalised"].mean(), "wins": wins, "shared_best": ties,
            "on_time": f"{int(r['on_time'].sum())}/{len(r)}", "mean_wall_s": r["wall_s"].mean(),
            "max_wall_over_budget": (r["wall_s"] / r["budget_s"]).max(),
            "median_peak_mb": r["peak_mb"].median(), "max_peak_mb": r["peak_mb"].max(),
        })
    return pd.DataFrame(rows)


def head_to_head(results: pd.DataFrame, a: str, b: str) -> tuple[int, int, int]:
    """(wins, ties, losses) of ``a`` against ``b`` on datasets where both ran; a failed run loses."""
    w = t = l = 0
    for _, g in results.groupby("dataset"):
        ra, rb = g[g["peer"] == a], g[g["peer"] == b]
        if ra.empty or rb.empty:
            continue
        ok_a, ok_b = ra["status"].iloc[0] == "ok", rb["status"].iloc[0] == "ok"
        if not ok_a and not ok_b:
            continue
        if ok_a and ok_b:
            d = ra["score"].iloc[0] - rb["score"].iloc[0]
            w, t, l = (w + 1, t, l) if d > TIE else (w, t, l + 1) if d < -TIE else (w, t + 1, l)
        else:
            w, l = (w + 1, l) if ok_a else (w, l + 1)
    return w, t, l


def _fmt(v, digits=4) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v)


def _md_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines)


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for pkg in ("tuner", "flaml", "optuna", "scikit-learn", "xgboost", "lightgbm", "pandas", "numpy"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    return ", ".join(parts)


def render_markdown(results: pd.DataFrame, peers: list[str], args, plot: Path | None) -> str:
    budget = args.budget
    lines = [
        f"# tuner vs peers at equal budget ({budget:g} s per dataset and peer)", "",
        f"Peers: {', '.join(peers)}. Seed {args.seed}; 75/25 outer split (stratified for classification); "
        f"{args.cores} core(s); holdout scores computed by `benchmarks.compare` from each peer's predictions. "
        f"Python {platform.python_version()}; {_versions()}.", "",
        "Headline: ROC-AUC (binary), accuracy (multiclass), R² (regression). "
        "Secondary: F1 (binary; macro for multiclass), RMSE (regression). "
        f"Normalised = (score − constant predictor) / (best seen − constant predictor); a failed run counts 0. "
        f"Ties: within {TIE}.", "",
        "## Headline score per dataset", "",
    ]
    wide = []
    for ds, g in results.groupby("dataset", sort=False):
        rec = {"dataset": ds, "task": g["task"].iloc[0], "rows": int(g["rows"].iloc[0]), "metric": g["metric"].iloc[0]}
        best = g.loc[g["status"] == "ok", "score"].max()
        for p in peers:
            r = g[g["peer"] == p]
            if r.empty:
                rec[p] = ""
            elif r["status"].iloc[0] != "ok":
                rec[p] = r["status"].iloc[0]
            else:
                s = r["score"].iloc[0]
                rec[p] = f"**{s:.4f}**" if s >= best - TIE else f"{s:.4f}"
        rec["constant"] = _fmt(float(g["constant"].iloc[0]))
        wide.append(rec)
    lines += [_md_table(pd.DataFrame(wide)), "", "## Every run", ""]
    detail = results.assign(
        **{"F1 / RMSE": [_fmt(r["rmse"] if r["task"] == "regression" else r["f1"]) for _, r in results.iterrows()],
           "score": results["score"].map(_fmt), "normalised": results["normalised"].map(lambda v: _fmt(v, 3)),
           "wall_s": results["wall_s"].map(lambda v: _fmt(v, 1)), "peak_mb": results["peak_mb"].map(lambda v: _fmt(v, 0)),
           "error": results["error"].map(lambda e: (e[:120] + "…") if len(e) > 120 else e)}
    )[["dataset", "peer", "status", "metric", "score", "F1 / RMSE", "normalised", "wall_s", "peak_mb", "model", "error"]]
    lines += [_md_table(detail), "", "## Summary", ""]
    summary = peer_summary(results, peers)
    show = summary.assign(
        mean_normalised=summary["mean_normalised"].map(lambda v: _fmt(v, 3)),
        mean_wall_s=summary["mean_wall_s"].map(lambda v: _fmt(v, 1)),
        max_wall_over_budget=summary["max_wall_over_budget"].map(lambda v: _fmt(v, 2)),
        median_peak_mb=summary["median_peak_mb"].map(lambda v: _fmt(v, 0)),
        max_peak_mb=summary["max_peak_mb"].map(lambda v: _fmt(v, 0)),
    ).rename(columns={"on_time": f"within {ON_TIME:.2f}× budget", "shared_best": "tied best"})
    lines += [_md_table(show), ""]
    others = [p for p in peers if p != "tuner"]
    if "tuner" in peers and others:
        lines += ["Head to head (tuner wins / ties / losses; a failed run loses):", ""]
        for o in others:
            w, t, l = head_to_head(results, "tuner", o)
            lines.append(f"- tuner vs {o}: {w} / {t} / {l}")
        lines.append("")
    if "tuner" in peers:
        r = results[results["peer"] == "tuner"]
        if len(r):
            lines += [f"tuner runs within {ON_TIME:.2f} × budget: {int(r['on_time'].sum())}/{len(r)} "
                      f"({r['on_time'].mean():.0%}).", ""]
        overhead = driver_overheads(r)
        if len(overhead):
            lines += [f"tuner's driver overhead (share of its tuning wall time spent outside model fit / predict: "
                      f"sampling, pruning, storage, data preparation, leaderboard): median {overhead.median():.1%}, "
                      f"mean {overhead.mean():.1%}, max {overhead.max():.1%} ({overhead.idxmax()}); "
                      f"≤ 5 % on {int((overhead <= 0.05).sum())}/{len(overhead)} datasets.", ""]
    if plot is not None:
        lines += [f"![normalised scores]({plot.name})", ""]
    return "\n".join(lines)


def driver_overheads(rows: pd.DataFrame) -> pd.Series:
    """Per dataset, the ``driver_overhead`` a peer reported in its info (tuner does)."""
    values = {}
    for _, r in rows.iterrows():
        try:
            info = json.loads(r.get("info") or "{}")
        except (TypeError, ValueError):
            continue
        if isinstance(info, dict) and info.get("driver_overhead") is not None:
            values[r["dataset"]] = float(info["driver_overhead"])
    return pd.Series(values, dtype=float)


def plot_normalised(results: pd.DataFrame, peers: list[str], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install -e '.[bench]')", file=sys.stderr)
        return None
    datasets = list(dict.fromkeys(results["dataset"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(datasets) * max(1, len(peers)) / 2 + 2), 4.5))
    width = 0.8 / max(1, len(peers))
    x = np.arange(len(datasets))
    for i, p in enumerate(peers):
        r = results[results["peer"] == p].set_index("dataset").reindex(datasets)
        vals = r["normalised"].to_numpy(dtype=float)
        failed = (r["status"] != "ok").to_numpy()
        bars = ax.bar(x + (i - (len(peers) - 1) / 2) * width, np.nan_to_num(vals), width, label=p)
        for j in np.flatnonzero(failed):
            ax.text(bars[j].get_x() + width / 2, 0.02, "×", ha="center", va="bottom", color=bars[j].get_facecolor())
    ax.set_xticks(x, datasets, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("normalised holdout score (1 = best seen)")
    ax.set_ylim(min(0.0, float(np.nanmin(results["normalised"])) - 0.05) if len(results) else 0, 1.05)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_title(f"Normalised holdout score at {results['budget_s'].iloc[0]:g} s per dataset (× = failed)")
    ax.legend(fontsize=8, ncols=min(4, len(peers)))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


COLUMNS = ["dataset", "task", "rows", "features", "n_train", "n_test", "peer", "status", "metric", "score",
           "normalised", "best", "constant", *METRIC_COLUMNS, "wall_s", "budget_s", "on_time", "peak_mb",
           "returncode", "model", "error", "info", "preds", "log"]


def write_outputs(rows: list[dict], peers: list[str], args, out: Path, *, plot: bool) -> pd.DataFrame:
    results = add_normalised(pd.DataFrame(rows))[COLUMNS]
    results.to_csv(out / "results.csv", index=False)
    png = plot_normalised(results, peers, out / "results.png") if plot else None
    (out / "results.md").write_text(render_markdown(results, peers, args, png))
    return results


# --------------------------------------------------------------------------- main

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="folder with INDEX.tsv and <name>.tsv.gz "
                   "[default: ../shared/datasets/pmlb beside the repo, then /work/shared/datasets/pmlb]")
    p.add_argument("--datasets", help="comma-separated names from INDEX.tsv [default: all]")
    p.add_argument("--budget", type=float, default=60.0, help="seconds per dataset and peer, refit included")
    p.add_argument("--peers", default="tuner,flaml,optuna_baseline")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--max-rows", type=int, default=None, help="subsample larger datasets (stratified) first")
    p.add_argument("--cores", type=int, default=None, help="cores every peer may use [default: all]")
    p.add_argument("--kill-factor", type=float, default=1.5)
    p.add_argument("--kill-margin", type=float, default=20.0, help="seconds added to kill-factor × budget")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--merge", type=Path, nargs="+", metavar="DIR",
                   help="run nothing: combine the results.csv of earlier runs (same budget, seed and cores; "
                        "e.g. peers run one after the other) into --out")
    args = p.parse_args(argv)
    if args.budget <= 0:
        p.error("--budget must be positive")
    if args.cores is None:
        try:
            args.cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            args.cores = os.cpu_count() or 1
    return args


def merge(args) -> pd.DataFrame:
    """``--merge``: one table from several earlier runs' ``results.csv`` (rows of later runs win)."""
    frames = []
    for d in args.merge:
        path = d / "results.csv"
        if not path.exists():
            raise SystemExit(f"--merge: no results.csv in {d}")
        frames.append(pd.read_csv(path, keep_default_na=False, na_values=[""]))
    rows = pd.concat(frames, ignore_index=True).drop_duplicates(["dataset", "peer"], keep="last")
    budgets = sorted(set(rows["budget_s"]))
    if len(budgets) != 1:
        raise SystemExit(f"--merge: the runs have different budgets ({budgets}); compare like with like")
    args.budget = float(budgets[0])
    order = list(dict.fromkeys(rows["dataset"]))
    rows = rows.assign(_o=rows["dataset"].map(order.index)).sort_values("_o", kind="stable").drop(columns="_o")
    peers = list(dict.fromkeys(["tuner", *rows["peer"]])) if "tuner" in set(rows["peer"]) else list(dict.fromkeys(rows["peer"]))
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    records = rows.drop(columns=["normalised", "best"]).to_dict("records")
    for r in records:
        r["error"] = "" if pd.isna(r.get("error")) else str(r["error"])
        r["info"] = "" if pd.isna(r.get("info")) else r["info"]
        r["on_time"] = bool(r["on_time"]) if not isinstance(r["on_time"], str) else r["on_time"] == "True"
    results = write_outputs(records, peers, args, out, plot=not args.no_plot)
    print((out / "results.md").read_text().split("## Summary", 1)[-1].strip())
    return results


def main(argv=None) -> pd.DataFrame:
    args = parse_args(argv)
    if args.merge:
        return merge(args)
    data_dir = find_data_dir(args.data_dir)
    index = read_index(data_dir)
    names = [s.strip() for s in args.datasets.split(",") if s.strip()] if args.datasets else list(index.index)
    unknown = [n for n in names if n not in index.index]
    if unknown:
        raise SystemExit(f"not in {data_dir / 'INDEX.tsv'}: {', '.join(unknown)}")
    peers = resolve_peers(args.peers)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    results = None
    for name in names:
        rows += run_dataset(name, index.loc[name], data_dir, peers, args, out)
        results = write_outputs(rows, [p.name for p in peers], args, out, plot=False)
    if results is not None:
        results = write_outputs(rows, [p.name for p in peers], args, out, plot=not args.no_plot)
        print((out / "results.md").read_text().split("## Summary", 1)[-1].strip())
        print(f"\nwritten: {out / 'results.csv'}, {out / 'results.md'}" + ("" if args.no_plot else f", {out / 'results.png'}"))
    return results


if __name__ == "__main__":
    main()
