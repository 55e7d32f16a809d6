"""Plug-in families: found through the entry-point group ``tuner.search_spaces`` or given as
``--models module:ATTRIBUTE``; checked at start; tuned, ranked, exported and predicted like the
built-ins; the skops allow-list widened only by an explicit --trust-module, at export and at load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import search_spaces
from export_helpers import regression_frame
from tuner.cli.app import app

runner = CliRunner()
REF = "plugin_family_example:SPACE"
TESTS = str(Path(__file__).resolve().parents[1])


@pytest.fixture
def registry(monkeypatch):
    """The registry as it was before the test (plug-ins registered by a test are forgotten)."""
    monkeypatch.setattr(search_spaces, "FAMILIES", dict(search_spaces.FAMILIES))
    monkeypatch.setattr(search_spaces, "_entry_points_read", False)
    return search_spaces


@pytest.fixture
def prices(tmp_path):
    path = tmp_path / "prices.csv"
    regression_frame(n=120).to_csv(path, index=False)
    return path


def test_a_plugin_given_as_module_attribute_is_tuned_ranked_exported_and_predicted(registry, prices, tmp_path):
    storage = f"sqlite:///{tmp_path / 't.db'}"
    res = runner.invoke(app, ["run", str(prices), "--target", "price", "--models", f"lasso,{REF}", "--trials", "2",
                              "--cv", "2", "--storage", storage, "--run", "p"])
    assert res.exit_code == 0, res.output
    board = json.loads(runner.invoke(app, ["leaderboard", "--storage", storage, "--run", "p", "--format", "json"]).stdout)
    row = next(r for r in board if r["model"] == "plugin_ridge")
    assert row["status"] == "ok" and row["trials"]["complete"] == 2

    # without --trust-module its class is not on the allow-list: a pickle, said so
    res = runner.invoke(app, ["export", "--storage", storage, "--run", "p", "--model", "plugin_ridge",
                              "--out", str(tmp_path / "pickled"), "--no-importance"])
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "pickled" / "model_card.json").read_text())
    assert card["pipeline"]["format"] == "joblib-pickle" and card["plugins"] == {"plugin_ridge": REF}

    out = tmp_path / "model"
    res = runner.invoke(app, ["export", "--storage", storage, "--run", "p", "--model", "plugin_ridge",
                              "--out", str(out), "--trust-module", "plugin_family_example", "--no-importance"])
    assert res.exit_code == 0, res.output
    assert "plug-in family plugin_ridge" in res.output and "--trust-module plugin_family_example" in res.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["pipeline"]["format"] == "skops"
    assert card["pipeline"]["trusted_modules"] == ["plugin_family_example"]
    assert "plugin_family_example.PluginRidge" in card["pipeline"]["trusted_types"]

    refused = runner.invoke(app, ["predict", str(out), str(prices)])
    assert refused.exit_code == 2
    assert "plugin_family_example.PluginRidge" in refused.output and "--trust-module plugin_family_example" in refused.output
    done = runner.invoke(app, ["predict", str(out), str(prices), "--trust-module", "plugin_family_example",
                               "--out", str(tmp_path / "p.csv")])
    assert done.exit_code == 0, done.output
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 121


def test_a_resumed_run_and_a_new_process_find_the_plugin_from_the_stored_run(registry, prices, tmp_path):
    storage = f"sqlite:///{tmp_path / 't.db'}"
    assert runner.invoke(app, ["run", str(prices), "--target", "price", "--models", REF, "--trials", "1",
                               "--cv", "2", "--storage", storage, "--run", "p"]).exit_code == 0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    again = subprocess.run([sys.executable, "-m", "tuner", "run", str(prices), "--target", "price", "--trials", "2",
                            "--storage", storage, "--run", "p"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    board = json.loads(runner.invoke(app, ["leaderboard", "--storage", storage, "--run", "p", "--format", "json"]).stdout)
    assert [r["trials"]["complete"] for r in board if r["model"] == "plugin_ridge"] == [3]  # 1, then 2 more


def test_an_installed_entry_point_is_listed_and_usable_by_name(registry, prices, tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist = site / "tuner_plugin_example-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tuner-plugin-example\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[tuner.search_spaces]\nplugin_ridge = {REF}\n")
    monkeypatch.syspath_prepend(str(site))
    listed = runner.invoke(app, ["spaces", "--task", "regression"])
    assert listed.exit_code == 0 and "plugin_ridge" in listed.output
    res = runner.invoke(app, ["run", str(prices), "--target", "price", "--models", "plugin_ridge", "--trials", "1",
                              "--cv", "2", "--storage", f"sqlite:///{tmp_path / 't.db'}", "--run", "e"])
    assert res.exit_code == 0, res.output
    assert "plugin_ridge" in res.output


@pytest.mark.parametrize("ref, message", [
    ("plugin_family_example:NOT_A_SPACE", "is a dict, not a search_spaces.SearchSpace"),
    ("plugin_family_example:TAKEN", "the name 'lasso' is taken by tuner"),
    ("plugin_family_example:MISSING", "has no 'MISSING'"),
    ("no_such_package.family:SPACE", "cannot import the module"),
])
def test_a_plugin_that_breaks_the_contract_exits_2_before_anything_is_written(registry, prices, tmp_path, ref, message):
    db = tmp_path / "t.db"
    res = runner.invoke(app, ["run", str(prices), "--target", "price", "--models", ref, "--trials", "1",
                              "--storage", f"sqlite:///{db}"])
    assert res.exit_code == 2 and message in res.output, res.output
    assert "Traceback" not in res.output
