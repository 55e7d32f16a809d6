"""Side-by-side benchmark of ``tuner`` against its peers at equal wall-clock budget.

    python -m benchmarks.compare --budget 60 --peers tuner,flaml,optuna_baseline --out results/
    python -m benchmarks.compare --suite both --seeds 0,1,2 --budget 60 --peers tuner,flaml,autogluon \\
        --python autogluon=/work/ag-venv/bin/python --out results/
    python -m benchmarks.compare --budget 10 --datasets phoneme,560_bodyfat --max-rows 2000 --out /tmp/quick

Datasets come from suites (``--suite pmlb|mixed|both``, see ``benchmarks.suites``). For
every dataset and holdout seed (``--seeds 0,1,2``; a dataset of 5,000 rows or more gets the
first seed only unless ``--all-seeds``):

- one outer split, the same for every peer: 75 % train / 25 % holdout, stratified for
  classification, seeded; written to ``<out>/splits/<dataset>/seed<k>/`` (a run of the one
  ``--seed`` keeps the earlier layout ``<out>/splits/<dataset>/``);
- each peer runs in its own process (``python -m benchmarks.peers.<peer>``, with the
  interpreter of ``--python name=PATH`` or ``$TUNER_BENCH_<NAME>_PYTHON`` when given), one at
  a time, with every core (``--cores``), and gets the training rows and the holdout
  *features*; its budget covers the whole process (start-up, search, final refit,
  prediction); it is killed at ``--kill-factor`` × budget + ``--kill-margin`` seconds and
  then reported as ``timeout``; a crash is reported as ``failed``; neither stops the benchmark;
- the peer writes its holdout predictions, scored here (``benchmarks.scoring``), never by
  the peer: ROC-AUC (binary), accuracy (multiclass), R² (regression) as the headline, plus
  F1 (binary; macro for multiclass) and RMSE;
- wall time is measured from process start to exit; peak memory is the peer process's
  peak resident set plus what its worker processes hold, polled every 0.1 s.

Outputs in ``--out``: ``results.csv`` (one row per dataset × seed × peer), ``results.md``
(scores, then per suite and overall: mean rank, mean normalised score, wins / ties /
losses between every pair of peers, runs on time, the spread of each peer's score across
seeds; see ``benchmarks.summary``) and ``results.png``. They are rewritten after each
dataset, so an interrupted benchmark keeps what it finished.

Peers are given by name (``tuner``, ``flaml``, ``optuna_baseline``, ``autogluon``) or as
``name=module`` / ``name=path/to/script.py`` for any program following the protocol of
``benchmarks.peers._common``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
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
from benchmarks.report import plot_normalised, render_markdown
from benchmarks.scoring import HEADLINE, METRIC_COLUMNS, SECONDARY, aligned_proba, classes_of, constant_score, score  # noqa: F401
from benchmarks.suites import (  # noqa: F401
    REPO,
    SUITES,
    TARGET,
    Dataset,
    dataset_file,
    find_data_dir,
    list_datasets,
    load_dataset,
    read_dataset,
    read_index,
    seeds_for,
    split,
    usable,
    write_split,
)
from benchmarks.summary import (  # noqa: F401
    ON_TIME,
    TIE,
    add_normalised,
    driver_overheads,
    head_to_head,
    peer_summary,
    rank_scores,
    ranks,
    seed_spread,
    wtl_matrix,
)

POLL_S = 0.1


# --------------------------------------------------------------------------- running a peer

@dataclass
class Peer:
    name: str
    command: list[str]


def peer_python(name: str, pythons: dict[str, str] | None = None) -> str:
    """The interpreter that runs a peer: ``--python NAME=PATH``, else ``$TUNER_BENCH_<NAME>_PYTHON``,
    else this one. A peer whose libraries cannot share tuner's environment (AutoGluon pins its
    own scikit-learn, numpy, ...) runs from a virtual environment of its own this way."""
    env = "TUNER_BENCH_" + re.sub(r"\W", "_", name).upper() + "_PYTHON"
    given = (pythons or {}).get(name) or os.environ.get(env)
    if not given:
        return sys.executable
    path = Path(given).expanduser()
    if not path.exists() and shutil.which(given):
        return shutil.which(given)
    if not path.exists():
        raise SystemExit(f"peer {name!r}: no interpreter {path} (--python {name}=PATH or ${env})")
    return str(path)


def resolve_peers(text: str, pythons: dict[str, str] | None = None) -> list[Peer]:
    peers = []
    for spec in [s.strip() for s in text.split(",") if s.strip()]:
        name, _, where = spec.partition("=")
        if not where:
            if name not in PEERS:
                raise SystemExit(f"unknown peer {name!r}; known: {', '.join(PEERS)} (or name=module / name=script.py)")
            where = PEERS[name]
        python = peer_python(name, pythons)
        if where.endswith(".py"):
            script = Path(where).resolve()
            if not script.exists():
                raise SystemExit(f"peer {name!r}: no such script {script}")
            cmd = [python, str(script)]
        else:
            cmd = [python, "-m", where]
        peers.append(Peer(name, cmd))
    names = [p.name for p in peers]
    if len(set(names)) != len(names):
        raise SystemExit(f"a peer is listed twice: {', '.join(names)}")
    unused = set(pythons or {}) - set(names)
    if unused:
        raise SystemExit(f"--python names peer(s) not run: {', '.join(sorted(unused))}")
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

def _run_one(peer: Peer, base: dict, paths: dict, test: pd.DataFrame, classes, args, out: Path, tag: str) -> dict:
    """One peer on one split: its row of results.csv."""
    name, seed, task = base["dataset"], base["seed"], base["task"]
    preds_path = out / "preds" / tag / f"{peer.name}.json"
    log = out / "logs" / f"{tag.replace('/', '__')}__{peer.name}.log"
    kill_after = args.kill_factor * args.budget + args.kill_margin
    label = f"[{name} seed {seed}]" if args.layout == "seeds" else f"[{name}]"
    print(f"{label} {peer.name}: running (budget {args.budget:g}s, killed after {kill_after:g}s)", flush=True)
    ran = run_peer(peer, train=paths["train"], test_X=paths["test_X"], task=task, budget=args.budget, seed=seed,
                   cores=args.cores, out=preds_path, log=log, kill_after=kill_after)
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
    print(f"{label} {peer.name}: {shown}  wall {row['wall_s']:.1f}s  peak {row['peak_mb']:.0f} MB", flush=True)
    return row


def run_dataset(ds: Dataset, peers: list[Peer], args, out: Path) -> list[dict]:
    """Every peer on every holdout seed of one dataset."""
    df = load_dataset(ds)
    n_rows = len(usable(df, ds.task, args.seeds[0], args.max_rows))
    seeds = seeds_for(n_rows, args.seeds, args.all_seeds)
    if len(seeds) < len(args.seeds):
        print(f"[{ds.name}] {n_rows} rows (≥ 5,000): seed {seeds[0]} only (--all-seeds for every seed)", flush=True)
    rows = []
    for seed in seeds:
        train, test = split(df, ds.task, seed, args.max_rows)
        tag = ds.name if args.layout == "flat" else f"{ds.name}/seed{seed}"
        paths = write_split(train, test, out / "splits" / tag)
        classes = classes_of(train[TARGET]) if ds.task != "regression" else None
        base = {
            "suite": ds.suite, "dataset": ds.name, "seed": seed, "task": ds.task, "rows": len(train) + len(test),
            "features": df.shape[1] - 1, "n_train": len(train), "n_test": len(test), "metric": HEADLINE[ds.task],
            "constant": constant_score(ds.task, train[TARGET], test[TARGET]), "budget_s": args.budget,
        }
        rows += [_run_one(peer, base, paths, test, classes, args, out, tag) for peer in peers]
    return rows


# --------------------------------------------------------------------------- outputs

COLUMNS = ["suite", "dataset", "seed", "task", "rows", "features", "n_train", "n_test", "peer", "status", "metric",
           "score", "normalised", "best", "constant", *METRIC_COLUMNS, "wall_s", "budget_s", "on_time", "peak_mb",
           "returncode", "model", "error", "info", "preds", "log"]


def write_outputs(rows: list[dict], peers: list[str], args, out: Path, *, plot: bool) -> pd.DataFrame:
    results = add_normalised(pd.DataFrame(rows))[COLUMNS]
    results.to_csv(out / "results.csv", index=False)
    png = plot_normalised(results, peers, out / "results.png") if plot else None
    (out / "results.md").write_text(render_markdown(results, peers, args, png))
    return results


# --------------------------------------------------------------------------- main

def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds: comma-separated integers, not {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds: distinct integers, not {text!r}")
    return seeds


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=[*SUITES, "both"], default="pmlb", help="dataset suite(s) [default: pmlb]")
    p.add_argument("--data-dir", help="PMLB folder with INDEX.tsv and <name>.tsv.gz "
                   "[default: $TUNER_PMLB_DIR, ../shared/datasets/pmlb beside the repo, /work/shared/datasets/pmlb]")
    p.add_argument("--mixed-dir", help="mixed-suite folder with INDEX.tsv and <name>.csv.gz "
                   "[default: $TUNER_MIXED_DIR, ../shared/datasets/mixed beside the repo, /work/shared/datasets/mixed]")
    p.add_argument("--datasets", help="comma-separated names from the suites' INDEX.tsv [default: all]")
    p.add_argument("--budget", type=float, default=60.0, help="seconds per dataset, seed and peer, refit included")
    p.add_argument("--peers", default="tuner,flaml,optuna_baseline")
    p.add_argument("--python", action="append", default=[], metavar="PEER=PATH",
                   help="interpreter for a peer (repeatable), e.g. autogluon=/work/ag-venv/bin/python "
                        "[default: $TUNER_BENCH_<PEER>_PYTHON, else this interpreter]")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=_seeds, help="holdout seeds, e.g. 0,1,2 (splits in <out>/splits/<dataset>/seed<k>/)")
    seeds.add_argument("--seed", type=int, default=None, help="one holdout seed (the earlier layout) [default: 0]")
    p.add_argument("--all-seeds", action="store_true", help="every seed on datasets of 5,000 rows or more too")
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--max-rows", type=int, default=None, help="subsample larger datasets (stratified) first")
    p.add_argument("--cores", type=int, default=None, help="cores every peer may use [default: all]")
    p.add_argument("--kill-factor", type=float, default=1.5)
    p.add_argument("--kill-margin", type=float, default=20.0, help="seconds added to kill-factor × budget")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--merge", type=Path, nargs="+", metavar="DIR",
                   help="run nothing: combine the results.csv of earlier runs (same budget and cores; "
                        "e.g. peers run one after the other) into --out")
    args = p.parse_args(argv)
    if args.budget <= 0:
        p.error("--budget must be positive")
    args.layout = "seeds" if args.seeds else "flat"
    if not args.seeds:
        args.seeds = [0 if args.seed is None else args.seed]
    args.seed = args.seeds[0]
    pythons = {}
    for spec in args.python:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            p.error(f"--python takes PEER=PATH, not {spec!r}")
        pythons[name.strip()] = path.strip()
    args.pythons = pythons
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
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        if "seed" not in frame.columns:  # a run made before holdout seeds were recorded: its --seed, 0 by default
            print(f"--merge: {path} has no seed column: taken as seed 0", file=sys.stderr)
            frame["seed"] = 0
        if "suite" not in frame.columns:
            frame["suite"] = "pmlb"
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True).drop_duplicates(["dataset", "seed", "peer"], keep="last")
    budgets = sorted(set(rows["budget_s"]))
    if len(budgets) != 1:
        raise SystemExit(f"--merge: the runs have different budgets ({budgets}); compare like with like")
    args.budget = float(budgets[0])
    order = list(dict.fromkeys(rows["dataset"]))
    rows = rows.assign(_o=rows["dataset"].map(order.index)).sort_values(["_o", "seed"], kind="stable").drop(columns="_o")
    peers = list(dict.fromkeys(["tuner", *rows["peer"]])) if "tuner" in set(rows["peer"]) else list(dict.fromkeys(rows["peer"]))
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    records = rows.drop(columns=["normalised", "best"], errors="ignore").to_dict("records")
    for r in records:
        r["error"] = "" if pd.isna(r.get("error")) else str(r["error"])
        r["info"] = "" if pd.isna(r.get("info")) else r["info"]
        r["on_time"] = bool(r["on_time"]) if not isinstance(r["on_time"], str) else r["on_time"] == "True"
        r["seed"] = int(r["seed"])
    results = write_outputs(records, peers, args, out, plot=not args.no_plot)
    print((out / "results.md").read_text().split("## Summary", 1)[-1].strip())
    return results


def main(argv=None) -> pd.DataFrame:
    args = parse_args(argv)
    if args.merge:
        return merge(args)
    names = [s.strip() for s in args.datasets.split(",") if s.strip()] if args.datasets else None
    datasets = list_datasets(args.suite, names, {"pmlb": args.data_dir, "mixed": args.mixed_dir})
    if not datasets:
        raise SystemExit(f"no dataset to run in suite(s) {args.suite}")
    peers = resolve_peers(args.peers, args.pythons)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    results = None
    for ds in datasets:
        try:
            rows += run_dataset(ds, peers, args, out)
        except (ValueError, OSError) as exc:  # an unreadable table: reported, the others still run
            print(f"[{ds.name}] skipped: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            continue
        results = write_outputs(rows, [p.name for p in peers], args, out, plot=False)
    if results is not None:
        results = write_outputs(rows, [p.name for p in peers], args, out, plot=not args.no_plot)
        print((out / "results.md").read_text().split("## Summary", 1)[-1].strip())
        print(f"\nwritten: {out / 'results.csv'}, {out / 'results.md'}" + ("" if args.no_plot else f", {out / 'results.png'}"))
    return results


if __name__ == "__main__":
    main()
