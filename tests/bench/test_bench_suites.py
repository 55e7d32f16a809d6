"""benchmarks.suites and benchmarks.compare's seeds / suites / interpreters, on tiny generated
tables and a stand-in peer (no real AutoML peer runs here)."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from benchmarks import compare
from benchmarks.peers import autogluon_peer
from benchmarks.suites import BIG_ROWS, list_datasets, load_dataset, seeds_for, split, write_split

# predicts the training prior: fast, and follows the peer protocol
PRIOR_PEER = textwrap.dedent("""
    import numpy as np
    from benchmarks.peers import _common

    def run(args):
        X, y, X_test = _common.load(args)
        if args.task == "regression":
            _common.write_predictions(args, values=np.full(len(X_test), float(y.mean())), info={"model": "mean"})
            return
        counts = y.value_counts()
        classes = list(counts.index)
        proba = np.tile((counts / counts.sum()).to_numpy(), (len(X_test), 1))
        _common.write_predictions(args, labels=[classes[0]] * len(X_test), proba=proba, proba_classes=classes,
                                  info={"model": "prior", "text_columns": [c for c in X.columns if X[c].map(type).eq(str).any()],
                                        "missing": int(X.isna().sum().sum())})

    _common.main(run)
""")


def _write_mixed(folder, n_small=40, n_big=BIG_ROWS):
    """A mixed suite: ``small`` (text, NA / empty cells, a literal "None" category, a feature
    called ``target``, its target ``Outcome``, some rows without target) and ``big``."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    small = pd.DataFrame({
        "colour": rng.choice(["red", "green", "None"], n_small),
        "note": [("NA" if i % 7 == 0 else "" if i % 11 == 0 else f"word{i % 5} text") for i in range(n_small)],
        "x": rng.normal(size=n_small).round(3),
        "target": rng.integers(0, 3, n_small),  # a feature that happens to be called target
        "Outcome": rng.choice(["yes", "no"], n_small),
    })
    small.loc[[3, 17], "Outcome"] = "NA"
    small.to_csv(folder / "small.csv.gz", index=False, compression="gzip")
    big = pd.DataFrame({"a": rng.normal(size=n_big).round(3), "kind": rng.choice(["p", "q"], n_big)})
    big["y"] = (big["a"] * 2 + rng.normal(size=n_big)).round(3)
    big.to_csv(folder / "big.csv.gz", index=False, compression="gzip")
    pd.DataFrame({"name": ["small", "big"], "task": ["binary", "regression"], "target_column": ["Outcome", "y"],
                  "rows": [n_small, n_big]}).to_csv(folder / "INDEX.tsv", sep="\t", index=False)
    return folder


def test_mixed_suite_splits_keep_text_and_missing_cells(tmp_path):
    folder = _write_mixed(tmp_path / "mixed")
    (ds,) = list_datasets("mixed", ["small"], {"mixed": str(folder)})
    assert (ds.suite, ds.task, ds.target) == ("mixed", "binary", "Outcome")
    df = load_dataset(ds)
    assert "Outcome" not in df.columns and "target_feature" in df.columns
    assert set(df["target"].dropna()) == {"yes", "no"} and df["target"].isna().sum() == 2
    train, test = split(df, ds.task, seed=1, max_rows=None)
    assert len(train) + len(test) == 38  # rows without a target dropped
    paths = write_split(train, test, tmp_path / "splits" / "small" / "seed1")
    back = pd.concat([pd.read_parquet(paths["train"]), pd.read_parquet(paths["test"])])
    test_x = pd.read_parquet(paths["test_X"])
    assert "target" not in test_x.columns and len(test_x) == len(test)
    assert not pd.api.types.is_numeric_dtype(back["colour"])  # text stays text
    assert "None" in set(back["colour"])  # a category that looks like a missing marker is a value
    assert back["note"].isna().sum() == sum(i % 7 == 0 or i % 11 == 0 for i in range(40) if i not in (3, 17))
    assert back["note"].dropna().str.endswith(" text").all()
    assert pd.api.types.is_numeric_dtype(back["x"])


def test_suites_that_are_missing_are_an_error_alone_and_skipped_with_another(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TUNER_PMLB_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(SystemExit, match="suite 'mixed': no INDEX.tsv"):
        list_datasets("mixed", None, {"mixed": str(tmp_path / "absent")})
    folder = _write_mixed(tmp_path / "mixed")
    found = list_datasets("both", None, {"pmlb": str(tmp_path / "absent"), "mixed": str(folder)})
    assert [d.name for d in found] == ["small", "big"]
    assert "suite 'pmlb'" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown_one"):
        list_datasets("mixed", ["small", "unknown_one"], {"mixed": str(folder)})


def test_seed_rule_big_datasets_get_the_first_seed_only():
    assert seeds_for(BIG_ROWS - 1, [0, 1, 2], False) == [0, 1, 2]
    assert seeds_for(BIG_ROWS, [4, 1, 2], False) == [4]
    assert seeds_for(BIG_ROWS * 10, [0, 1, 2], True) == [0, 1, 2]


def test_mixed_suite_with_seeds_end_to_end_and_merge(tmp_path):
    folder = _write_mixed(tmp_path / "mixed")
    (tmp_path / "prior.py").write_text(PRIOR_PEER)
    out = tmp_path / "out"
    results = compare.main([
        "--suite", "mixed", "--mixed-dir", str(folder), "--seeds", "0,1,2", "--budget", "20", "--cores", "1",
        "--peers", f"p1={tmp_path / 'prior.py'},p2={tmp_path / 'prior.py'}", "--python", f"p2={sys.executable}",
        "--out", str(out), "--no-plot",
    ])
    assert sorted(set(zip(results["dataset"], results["seed"]))) == [("big", 0), ("small", 0), ("small", 1), ("small", 2)]
    assert (results["status"] == "ok").all(), results[["dataset", "peer", "error"]]
    assert (results["suite"] == "mixed").all()
    for k in range(3):
        assert (out / "splits" / "small" / f"seed{k}" / "test_X.parquet").exists()
        assert (out / "preds" / "small" / f"seed{k}" / "p1.json").exists()
    assert not (out / "splits" / "big" / "seed1").exists()
    splits = [pd.read_parquet(out / "splits" / "small" / f"seed{k}" / "test.parquet") for k in range(3)]
    assert not splits[0].equals(splits[1])  # the seeds give different holdouts
    small = results[results["dataset"] == "small"].iloc[0]
    info = json.loads(small["info"])
    assert "colour" in info["text_columns"] and info["missing"] > 0  # the peer got text and missing cells
    prior = results[results["dataset"] == "small"]
    assert np.allclose(prior["score"], 0.5) and (prior["constant"] == 0.5).all()  # the prior is the constant
    csv = pd.read_csv(out / "results.csv")
    assert "seed" in csv.columns and sorted(csv["seed"].unique()) == [0, 1, 2]
    md = (out / "results.md").read_text()
    for needle in ("mean_rank", "mean_normalised", "Wins / ties / losses", "Spread across holdout seeds", "± ",
                   "within 1.10 × budget", "| small | 2 |"):
        assert needle in md, needle
    # two runs made one after the other merge by dataset × seed × peer
    a, b = tmp_path / "a", tmp_path / "b"
    for folder_, keep in ((a, results["peer"] == "p1"), (b, results["peer"] == "p2")):
        folder_.mkdir()
        results[keep].to_csv(folder_ / "results.csv", index=False)
    merged = compare.main(["--merge", str(a), str(b), "--out", str(tmp_path / "m"), "--no-plot"])
    assert len(merged) == len(results) == 8
    assert sorted(zip(merged["dataset"], merged["seed"], merged["peer"])) == \
        sorted(zip(results["dataset"], results["seed"], results["peer"]))


def test_a_peer_runs_with_the_interpreter_it_is_given(tmp_path, monkeypatch):
    py = sys.executable
    peers = compare.resolve_peers("autogluon", {"autogluon": py})
    assert peers[0].command == [py, "-m", "benchmarks.peers.autogluon_peer"]
    monkeypatch.setenv("TUNER_BENCH_AUTOGLUON_PYTHON", py)
    assert compare.resolve_peers("autogluon")[0].command[0] == py
    monkeypatch.delenv("TUNER_BENCH_AUTOGLUON_PYTHON")
    assert compare.resolve_peers("tuner")[0].command[0] == sys.executable
    with pytest.raises(SystemExit, match="no interpreter"):
        compare.resolve_peers("autogluon", {"autogluon": str(tmp_path / "no" / "python")})
    with pytest.raises(SystemExit, match="not run"):
        compare.resolve_peers("tuner", {"autogluon": py})


def test_autogluon_gets_the_time_left_less_a_margin_for_prediction():
    assert autogluon_peer.fit_time_limit(100.0) == pytest.approx(90.0)
    assert autogluon_peer.fit_time_limit(10.0) == pytest.approx(10.0 - autogluon_peer.MIN_MARGIN_S)
    assert autogluon_peer.fit_time_limit(0.5) == 1.0
