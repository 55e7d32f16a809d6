"""The side-by-side benchmark (benchmarks/compare.py) on tiny budgets and tiny datasets.

It runs, its scores are the holdout scores of the predictions it saved (recomputed here
independently), and a peer that crashes or hangs is reported without stopping the rest.
FLAML is not exercised here: it is a benchmark-only dependency (the ``bench`` extra) and
pins ``xgboost<3`` in its own ``automl`` extra, so it stays out of the ``test`` extra.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `benchmarks` is a folder of the repository, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import compare  # noqa: E402 (after the sys.path line above)

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

BUDGET = 4

CRASHING_PEER = """
import sys
raise RuntimeError("boom: this peer always crashes")
"""

HANGING_PEER = """
import os, subprocess, sys, time
from pathlib import Path

out = Path(sys.argv[sys.argv.index("--out") + 1])
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # a worker of its own
(out.parent / "pids.json").write_text('{"peer": %d, "worker": %d}' % (os.getpid(), child.pid))
time.sleep(600)
"""


def _write_pmlb(folder: Path) -> Path:
    """Two tiny datasets in the PMLB layout: <name>.tsv.gz with a `target` column + INDEX.tsv."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    n = 160
    x = rng.normal(size=(n, 3))
    binary = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2],
                           "colour": rng.choice(["red", "green", "blue"], size=n)})
    binary.loc[rng.choice(n, 10, replace=False), "x2"] = np.nan
    logit = 2.0 * x[:, 0] - x[:, 2] + (binary["colour"] == "red") + rng.normal(scale=0.7, size=n)
    binary["target"] = np.where(logit > 0, "yes", "no")  # string labels
    binary.to_csv(folder / "tiny_binary.tsv.gz", sep="\t", index=False)

    m = 120
    z = rng.normal(size=(m, 4))
    reg = pd.DataFrame(z, columns=[f"z{i}" for i in range(4)])
    reg["target"] = 3 * z[:, 0] - 2 * z[:, 1] + 0.5 * z[:, 2] ** 2 + rng.normal(scale=0.3, size=m)
    reg.to_csv(folder / "tiny_reg.tsv.gz", sep="\t", index=False)

    pd.DataFrame({"name": ["tiny_binary", "tiny_reg"], "task": ["binary", "regression"],
                  "rows": [n, m], "features": [4, 4]}).to_csv(folder / "INDEX.tsv", sep="\t", index=False)
    return folder


def _independent_score(task: str, y_test: pd.Series, preds: dict) -> float:
    """The headline score recomputed with scikit-learn, without benchmarks.compare's helpers."""
    if task == "regression":
        return skm.r2_score(y_test.to_numpy(dtype=float), np.asarray(preds["values"], dtype=float))
    cols = [str(c) for c in preds["proba_classes"]]
    positive = "yes"
    if "proba" in preds:
        s = np.asarray(preds["proba"], dtype=float)[:, cols.index(positive)]
    else:
        s = np.asarray(preds["decision"], dtype=float) * (1 if cols[1] == positive else -1)
    return skm.roc_auc_score(y_test.astype(str) == positive, s)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """One tiny benchmark: tuner, the Optuna baseline and a peer that crashes, on two datasets."""
    tmp = tmp_path_factory.mktemp("bench")
    data = _write_pmlb(tmp / "pmlb")
    (tmp / "crash.py").write_text(CRASHING_PEER)
    out = tmp / "results"
    results = compare.main([
        "--data-dir", str(data), "--budget", str(BUDGET), "--cores", "1", "--out", str(out),
        "--peers", f"tuner,optuna_baseline,broken={tmp / 'crash.py'}",
    ])
    return out, results, data


def test_every_peer_runs_on_every_dataset_and_the_outputs_are_written(bench):
    out, _, _ = bench
    assert (out / "results.csv").exists() and (out / "results.md").exists() and (out / "results.png").exists()
    csv = pd.read_csv(out / "results.csv")
    assert sorted(zip(csv["dataset"], csv["peer"])) == sorted(
        (d, p) for d in ("tiny_binary", "tiny_reg") for p in ("tuner", "optuna_baseline", "broken"))
    real = csv[csv["peer"] != "broken"]
    assert (real["status"] == "ok").all(), real[["dataset", "peer", "status", "error"]].to_string()
    assert (real["wall_s"] > 0).all() and (real["peak_mb"] > 10).all()
    md = (out / "results.md").read_text()
    for needle in ("tiny_binary", "tiny_reg", "tuner", "optuna_baseline", "broken", "mean_normalised",
                   "tuner vs optuna_baseline", "within 1.10 × budget"):
        assert needle in md


def test_scores_are_computed_here_from_the_saved_holdout_predictions(bench):
    out, _, data = bench
    csv = pd.read_csv(out / "results.csv")
    for _, row in csv[csv["status"] == "ok"].iterrows():
        test = pd.read_parquet(out / "splits" / row["dataset"] / "test.parquet")
        preds = json.loads((out / row["preds"]).read_text())
        assert _independent_score(row["task"], test["target"], preds) == pytest.approx(row["score"], abs=1e-12)
        if row["task"] == "regression":
            rmse = skm.root_mean_squared_error(test["target"], preds["values"])
            assert row["rmse"] == pytest.approx(rmse)
        else:
            f1 = skm.f1_score(test["target"].astype(str), [str(v) for v in preds["labels"]], pos_label="yes")
            assert row["f1"] == pytest.approx(f1)
    # the same outer split for every peer: 75/25 of the data, stratified, no row in both parts
    full = pd.read_csv(data / "tiny_binary.tsv.gz", sep="\t")
    train = pd.read_parquet(out / "splits/tiny_binary/train.parquet")
    test = pd.read_parquet(out / "splits/tiny_binary/test.parquet")
    assert len(test) == 40 and len(train) == 120
    assert abs((test["target"] == "yes").mean() - (full["target"] == "yes").mean()) < 0.03
    assert not set(map(tuple, train.round(9).astype(str).to_numpy())) & set(map(tuple, test.round(9).astype(str).to_numpy()))
    test_x = pd.read_parquet(out / "splits/tiny_binary/test_X.parquet")
    assert "target" not in test_x.columns  # peers never see the holdout labels


def test_a_crashing_peer_is_reported_not_fatal(bench):
    out, _, _ = bench
    csv = pd.read_csv(out / "results.csv")
    broken = csv[csv["peer"] == "broken"]
    assert (broken["status"] == "failed").all()
    assert broken["error"].str.contains("boom: this peer always crashes").all()
    assert (broken["normalised"] == 0).all()
    assert "failed" in (out / "results.md").read_text()


def test_normalised_scores_and_wins(bench):
    _, results, _ = bench
    ok = results[results["status"] == "ok"]
    for _, g in ok.groupby("dataset"):
        assert g["normalised"].max() == pytest.approx(1.0)  # the best seen on each dataset
        const = g["constant"].iloc[0]
        expected = (g["score"] - const) / (g["score"].max() - const)
        assert np.allclose(g["normalised"], expected)
    summary = compare.peer_summary(results, ["tuner", "optuna_baseline", "broken"])
    assert summary.set_index("peer").loc["broken", "wins"] == 0
    assert summary["wins"].sum() + summary["shared_best"].sum() >= 2  # someone is best on each dataset


def test_a_hanging_peer_is_killed_with_its_workers(tmp_path):
    data = _write_pmlb(tmp_path / "pmlb")
    (tmp_path / "hang.py").write_text(textwrap.dedent(HANGING_PEER))
    out = tmp_path / "results"
    results = compare.main([
        "--data-dir", str(data), "--datasets", "tiny_binary", "--budget", "1", "--kill-factor", "1",
        "--kill-margin", "1", "--out", str(out), "--no-plot", "--peers", f"hang={tmp_path / 'hang.py'}",
    ])
    row = results.iloc[0]
    assert row["status"] == "timeout" and "killed after 2s" in row["error"]
    assert 1.9 < row["wall_s"] < 10
    pids = json.loads((out / "preds/tiny_binary/pids.json").read_text())
    for pid in pids.values():
        assert not _alive(pid), f"process {pid} of the killed peer is still running"


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():  # a zombie waiting for its (re)parent to reap it is dead for our purpose
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_scoring_multiclass_and_label_alignment():
    y = pd.Series([2, 0, 1, 1, 2, 0])
    preds = {"labels": [2, 0, 1, 2, 2, 1], "proba_classes": [2, 0, 1],  # columns in another order
             "proba": [[.8, .1, .1], [.1, .8, .1], [.1, .1, .8], [.5, .2, .3], [.6, .2, .2], [.2, .3, .5]]}
    s = compare.score("multiclass", y, preds, compare.classes_of(y))
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["f1"] == pytest.approx(skm.f1_score(y, preds["labels"], average="macro"))
    proba = np.asarray(preds["proba"])[:, [1, 2, 0]]  # to class order 0, 1, 2
    assert s["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert compare.constant_score("multiclass", pd.Series([1, 1, 0]), y) == pytest.approx(2 / 6)
    with pytest.raises(ValueError):
        compare.score("multiclass", y, {"labels": [0, 1]})  # wrong length


def test_tuner_reports_its_driver_overhead(bench):
    out, results, _ = bench
    tuner_rows = results[results["peer"] == "tuner"]
    overhead = compare.driver_overheads(tuner_rows)
    assert sorted(overhead.index) == ["tiny_binary", "tiny_reg"]
    assert ((overhead >= 0) & (overhead <= 1)).all()
    infos = [json.loads(i) for i in tuner_rows["info"]]
    assert all(i["model_time_s"] > 0 for i in infos)  # trials recorded their time inside the model
    assert "driver overhead" in (out / "results.md").read_text()


def test_runs_made_one_after_the_other_merge_into_one_table(bench, tmp_path):
    out, results, _ = bench
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, keep in ((first, results["peer"] == "tuner"), (second, results["peer"] != "tuner")):
        folder.mkdir()
        results[keep].to_csv(folder / "results.csv", index=False)
    merged = compare.main(["--merge", str(first), str(second), "--out", str(tmp_path / "m"), "--no-plot"])
    assert sorted(zip(merged["dataset"], merged["peer"])) == sorted(zip(results["dataset"], results["peer"]))
    np.testing.assert_allclose(merged.sort_values(["dataset", "peer"])["normalised"].to_numpy(),
                               results.sort_values(["dataset", "peer"])["normalised"].to_numpy())
    assert "tuner vs optuna_baseline" in (tmp_path / "m" / "results.md").read_text()
