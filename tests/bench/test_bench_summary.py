"""benchmarks.summary / benchmarks.report: ranks, wins / ties / losses, the normalised score
with the constant predictor as zero, and the spread of a peer's score across seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.report import spread_table
from benchmarks.scoring import constant_score
from benchmarks.summary import (
    TIE,
    add_normalised,
    head_to_head,
    peer_summary,
    rank_scores,
    ranks,
    seed_spread,
    wtl_matrix,
)


def _runs(table: list[tuple], constant: float = 0.5) -> pd.DataFrame:
    """Rows (dataset, seed, peer, score or None for a failed run)."""
    return pd.DataFrame([{
        "dataset": d, "seed": s, "peer": p, "status": "ok" if v is not None else "failed",
        "score": np.nan if v is None else v, "constant": constant, "wall_s": 1.0, "budget_s": 1.0,
        "on_time": True, "peak_mb": 100.0,
    } for d, s, p, v in table])


def test_ranks_share_ties_within_the_margin_and_put_failures_last():
    r = rank_scores({"a": 0.90, "b": 0.90 - TIE / 2, "c": 0.80, "d": None})
    assert r == {"a": 1.5, "b": 1.5, "c": 3.0, "d": 4.0}
    r = rank_scores({"a": 0.7, "b": None, "c": np.nan})
    assert r == {"a": 1.0, "b": 2.5, "c": 2.5}  # two failed runs share the last two places
    assert rank_scores({"a": 0.5, "b": 0.6, "c": 0.6 + 3 * TIE}) == {"c": 1.0, "b": 2.0, "a": 3.0}
    assert rank_scores({"a": None}) == {"a": 1.0}


def test_mean_rank_is_over_dataset_and_seed():
    res = add_normalised(_runs([
        ("d1", 0, "x", 0.9), ("d1", 0, "y", 0.8), ("d1", 1, "x", 0.7), ("d1", 1, "y", 0.8),
        ("d2", 0, "x", 0.6), ("d2", 0, "y", None),
    ]))
    rk = ranks(res)
    assert len(rk) == 6
    assert rk.groupby("peer")["rank"].mean().to_dict() == pytest.approx({"x": 4 / 3, "y": 5 / 3})
    summary = peer_summary(res, ["x", "y"]).set_index("peer")
    assert summary.loc["x", "mean_rank"] == pytest.approx(4 / 3)
    assert summary.loc["y", "failed"] == 1 and summary.loc["x", "wins"] == 2 and summary.loc["y", "wins"] == 1


def test_wins_ties_losses_matrix_is_complete_and_antisymmetric():
    res = _runs([
        ("d1", 0, "a", 0.900), ("d1", 0, "b", 0.901), ("d1", 0, "c", 0.950),  # a ~ b tie
        ("d1", 1, "a", 0.800), ("d1", 1, "b", 0.700), ("d1", 1, "c", None),  # c failed: loses
        ("d2", 0, "a", None), ("d2", 0, "b", None), ("d2", 0, "c", 0.6),  # a and b both failed: not counted
    ])
    m = wtl_matrix(res, ["a", "b", "c"])
    assert list(m.index) == ["a", "b", "c"] and list(m.columns) == ["a", "b", "c"]
    assert m.loc["a", "a"] == "—"
    assert m.loc["a", "b"] == "1 / 1 / 0" and m.loc["b", "a"] == "0 / 1 / 1"
    assert m.loc["a", "c"] == "1 / 0 / 2" and m.loc["c", "a"] == "2 / 0 / 1"
    for x in "abc":
        for y in "abc":
            if x != y:
                w, t, l = head_to_head(res, x, y)
                assert (l, t, w) == head_to_head(res, y, x)
    # the same dataset on two seeds counts twice, not once
    assert head_to_head(res, "a", "b") == (1, 1, 0)


def test_constant_predictor_scores_for_each_task():
    y_train = pd.Series(["b", "b", "b", "a", "a", "c"])  # training majority: b
    y_test = pd.Series(["a", "a", "a", "b", "c", "c"])  # holdout majority: a (not the constant's answer)
    assert constant_score("multiclass", y_train, y_test) == pytest.approx(1 / 6)
    assert constant_score("binary", pd.Series([0, 0, 1]), pd.Series([1, 1])) == 0.5
    assert constant_score("regression", pd.Series([5.0, 7.0]), pd.Series([100.0])) == 0.0
    # numeric labels compared by value, whatever their dtype
    assert constant_score("multiclass", pd.Series([2, 2, 1]), pd.Series([2.0, 1.0, 2.0, 0.0])) == pytest.approx(0.5)


def test_normalised_score_has_the_constant_predictor_as_zero_not_the_worst_peer():
    res = _runs([("d", 0, "a", 0.9), ("d", 0, "b", 0.7), ("d", 0, "c", 0.5), ("d", 0, "f", None),
                 ("d", 1, "a", 0.6), ("d", 1, "b", 0.8), ("d", 1, "c", 0.4), ("d", 1, "f", 0.8)], constant=0.5)
    n = add_normalised(res).set_index(["seed", "peer"])["normalised"]
    assert n[(0, "a")] == pytest.approx(1.0) and n[(0, "b")] == pytest.approx(0.5)
    assert n[(0, "c")] == pytest.approx(0.0)  # as good as the constant predictor
    assert n[(0, "f")] == 0.0  # failed
    # seed 1 is normalised by its own best (0.8), and a peer below the constant goes negative
    assert n[(1, "b")] == pytest.approx(1.0) and n[(1, "a")] == pytest.approx(1 / 3)
    assert n[(1, "c")] == pytest.approx(-1 / 3)
    # multiclass: the constant is the holdout share of the training majority
    mc = _runs([("m", 0, "a", 0.75), ("m", 0, "b", 0.5)], constant=0.25)
    m = add_normalised(mc).set_index("peer")["normalised"]
    assert m["a"] == pytest.approx(1.0) and m["b"] == pytest.approx((0.5 - 0.25) / (0.75 - 0.25))
    # regression: R² 0 is the zero
    rg = _runs([("r", 0, "a", 0.8), ("r", 0, "b", 0.2)], constant=0.0)
    assert add_normalised(rg).set_index("peer")["normalised"]["b"] == pytest.approx(0.25)


def test_seed_spread_is_mean_and_sample_std_of_ok_seeds():
    res = _runs([
        ("d1", 0, "tuner", 0.80), ("d1", 1, "tuner", 0.84), ("d1", 2, "tuner", 0.88),
        ("d2", 0, "tuner", 0.50), ("d2", 1, "tuner", None), ("d2", 2, "tuner", 0.70),
        ("d3", 0, "tuner", 0.90),  # a big dataset: one seed, no std
        ("d1", 0, "flaml", 0.8), ("d1", 1, "flaml", 0.8), ("d1", 2, "flaml", 0.8),
    ])
    s = seed_spread(res, "tuner").set_index("dataset")
    assert s.loc["d1", "mean"] == pytest.approx(0.84) and s.loc["d1", "std"] == pytest.approx(0.04)
    assert s.loc["d2", "n"] == 2 and s.loc["d2", "failed"] == 1
    assert s.loc["d2", "std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert s.loc["d3", "n"] == 1 and np.isnan(s.loc["d3", "std"])
    table, mean_std = spread_table(add_normalised(res), ["tuner", "flaml"])
    assert mean_std["tuner"] == pytest.approx((0.04 + np.std([0.5, 0.7], ddof=1)) / 2)
    assert mean_std["flaml"] == pytest.approx(0.0)
    assert "0.8400 ± 0.0400 (3)" in table and "1 failed" in table and "0.9000 (1)" in table
