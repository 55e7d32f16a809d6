"""--space FILE.toml (issue #21, part 1): narrow, fix or restrict what a family searches."""

from __future__ import annotations

import optuna
import pytest
from typer.testing import CliRunner

import search_spaces
import tuner
from tuner.cli import app
from tuner.storage.runs import open_storage, require_config

runner = CliRunner()

SPACE = """
[logistic_regression]
C = {low = 0.01, high = 10.0}
penalty = ["l2", "l1"]
class_weight = "balanced"
[logistic_regression.defaults]
C = 0.5
[random_forest]
n_estimators = 60
max_depth = [4, 8]
"""


def _trials(url: str, run: str, family: str):
    return optuna.load_study(study_name=f"{run}::{family}", storage=url).get_trials(deepcopy=False)


def test_every_trial_stays_inside_the_file_and_the_run_keeps_it(tmp_path, storage_url):
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    base = ["run", "builtin:breast_cancer", "--target", "target", "--models", "logistic_regression,random_forest",
            "--storage", storage_url, "--run", "s"]
    res = runner.invoke(app, base + ["--trials", "4", "--space", str(space)])
    assert res.exit_code == 0, res.output
    assert "Search space overrides (--space): logistic_regression C=0.01–10.0, penalty=l2|l1" in " ".join(res.stdout.split())
    lr = _trials(storage_url, "s", "logistic_regression")
    assert lr[0].params["C"] == 0.5  # the file's default, first
    for t in lr:
        assert 0.01 <= t.params["C"] <= 10.0 and t.params["penalty"] in ("l2", "l1")
        assert t.params["class_weight"] == "balanced"
    for t in _trials(storage_url, "s", "random_forest"):
        assert t.params["n_estimators"] == 60 and t.params["max_depth"] in (4, 8)
    config = require_config(open_storage(storage_url, create=False), "s")
    assert config.space["random_forest"]["params"]["n_estimators"] == {"fixed": 60}

    res = runner.invoke(app, base + ["--trials", "1"])  # without --space: the run's overrides go on
    assert res.exit_code == 0, res.output
    assert all(t.params["n_estimators"] == 60 for t in _trials(storage_url, "s", "random_forest"))
    other = tmp_path / "other.toml"
    other.write_text("[random_forest]\nn_estimators = 80\n")
    res = runner.invoke(app, base + ["--trials", "1", "--space", str(other)])
    assert res.exit_code == 2 and "other --space overrides" in res.output


@pytest.mark.parametrize("text, message", [
    ("[nope]\nx = 1\n", "unknown family [nope]"),
    ("[svm]\nC = 1.0\n", "[svm] is not searched in this run"),
    ("[lasso]\nfoo = 1\n", "[lasso] foo: lasso has no parameter 'foo' here; its parameters: "),
    ("[lasso]\nalpha = {low = -1, high = 2}\n", "alpha.low: -1 is outside the family's log-number range"),
    ("[lasso]\nalpha = {low = 0.5, high = 0.1}\n", "low 0.5 is above high 0.1"),
    ("[lasso]\nalpha = \"big\"\n", "'big' is not a number"),
    ("[lasso]\nalpha = [0.1, 0.2]\n", "give a value or {low = ..., high = ...}, not a list"),
    ("[lasso]\nprep_target = [\"cube\"]\n", "'cube' is not one of its choices"),
    ("[lasso]\nprep_target = []\n", "an empty list leaves nothing to try"),
    ("[lasso.defaults]\nalpha = 100.0\n", "100.0 is outside the family's"),
    ("[lasso\n", "is not valid TOML"),
])
def test_bad_space_files_exit_2_naming_the_key(tmp_path, storage_url, text, message):
    space = tmp_path / "space.toml"
    space.write_text(text)
    res = runner.invoke(app, ["run", "builtin:diabetes", "--target", "target", "--models", "lasso", "--trials", "1",
                              "--space", str(space), "--storage", storage_url])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert not (tmp_path / "tuner.db").exists()  # refused before anything is written


def test_python_dict_and_the_spaces_command(tmp_path, storage_url):
    board = tuner.tune("builtin:diabetes", target="target", models="lasso", trials=3, storage=storage_url,
                       run="d", space={"lasso": {"alpha": {"low": 0.01, "high": 0.1}, "prep_target": "none"}})
    assert board["status"][0] == "ok"
    for t in _trials(storage_url, "d", "lasso"):
        assert 0.01 <= t.params["alpha"] <= 0.1 and t.params["prep_target"] == "none"
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    res = runner.invoke(app, ["spaces", "--space", str(space)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    assert "fixed at 60" in text and "0.01 – 10.0" in text and "l2 | l1" in text
    res = runner.invoke(app, ["spaces", "--space", str(tmp_path / "missing.toml")])
    assert res.exit_code == 2 and "no such file" in res.output


@pytest.mark.parametrize("family", sorted(search_spaces.BUILT_IN))
def test_each_built_in_familys_describe_agrees_with_what_it_suggests(family):
    from tuner.search.space_file import describe_problems

    assert describe_problems(family) == []


def test_a_describe_that_disagrees_is_found(monkeypatch):
    import dataclasses

    from tuner.search.space_file import describe_problems

    space = search_spaces.get_space("lasso")
    wrong = dataclasses.replace(space, describe={"alpha": "log-float 1e-4 – 10", "max_iter": "int 100 – 500"})
    monkeypatch.setattr(search_spaces, "get_space", lambda name: wrong)
    problems = describe_problems("lasso")
    assert any("alpha is suggested as log-float 1e-05 – 10" in p for p in problems)
    assert any("max_iter, which is never suggested" in p for p in problems)
