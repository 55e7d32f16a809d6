"""The HTML report, checked in a real browser (Debian's headless Chromium driven by Playwright)."""

from __future__ import annotations

import io
import shutil
import sys

import pytest
from typer.testing import CliRunner

import tuner
from tuner import api
from tuner.cli import app
from tuner.results.html_report import TITLES

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install 'tuner[test]' (playwright)")
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900}, offline=True)
        yield context
        context.close()


def _render(context, path, shot):
    """Open the report; wait until every figure is drawn; errors, outside requests, titles, screenshot."""
    page = context.new_page()
    problems, outside = [], []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("request", lambda req: None if req.url.startswith(("file:", "data:", "blob:", "about:")) else outside.append(req.url))
    page.goto(path.as_uri())
    n_figures = page.evaluate("document.querySelectorAll('.figure').length")
    page.wait_for_function(
        "n => document.querySelectorAll('.figure .js-plotly-plot .main-svg').length >= n", arg=n_figures, timeout=30_000)
    titles = page.evaluate("Array.from(document.querySelectorAll('.figure .gtitle')).map(e => e.textContent)")
    drawn = page.evaluate("Array.from(document.querySelectorAll('.figure .js-plotly-plot'))"
                          ".filter(e => e.getBoundingClientRect().height > 100 && e.querySelector('.trace, .hm')).length")
    png = page.screenshot(path=str(shot), full_page=True)
    page.close()
    return {"n_figures": n_figures, "titles": titles, "drawn": drawn, "problems": problems, "outside": outside, "png": png}


def _not_blank(png: bytes) -> None:
    from PIL import Image, ImageStat

    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.size[1] > 1500  # a long page of charts
    stat = ImageStat.Stat(image)
    assert stat.stddev[0] > 15, f"screenshot looks blank (pixel std {stat.stddev[0]:.1f})"
    colours = Image.open(io.BytesIO(png)).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 200  # charts, text and fills, not a flat page


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """A binary run with a held-out test set and a regression run scored out of fold; their reports."""
    import numpy as np
    import pandas as pd

    d = tmp_path_factory.mktemp("reports")
    url = f"sqlite:///{d / 'tuner.db'}"
    rng = np.random.default_rng(0)
    n = 160
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    city = rng.choice(["Paris", "Lyon", "Nice"], size=n)
    cls = pd.DataFrame({"x1": x1, "x2": x2, "city": city,
                        "churned": np.where(x1 + (city == "Paris") + rng.normal(scale=0.5, size=n) > 0.5, "yes", "no")})
    cls.to_csv(d / "churn.csv", index=False)
    reg = pd.DataFrame({"a": x1, "b": x2, "price": 3 * x1 - x2 + rng.normal(scale=0.3, size=n)})
    reg.to_csv(d / "prices.csv", index=False)
    tuner.tune(str(d / "churn.csv"), target="churned", models=["logistic_regression", "random_forest"],
               trials=3, cv=3, test_size=0.25, storage=url, run="churn")
    tuner.tune(str(d / "prices.csv"), target="price", models=["lasso"], trials=3, cv=3, storage=url, run="prices")
    runner = CliRunner()
    out = {}
    for run in ("churn", "prices"):
        res = runner.invoke(app, ["report", "--run", run, "--storage", url, "--out", str(d / f"{run}.html")])
        assert res.exit_code == 0, res.output
        out[run] = d / f"{run}.html"
    return out


def test_report_is_one_self_contained_file(reports):
    text = reports["churn"].read_text(encoding="utf-8")
    assert "<script src" not in text.lower() and "<link" not in text.lower()  # nothing to fetch
    assert text.count("Plotly.newPlot") >= 5
    assert "looked at once" in text and "Leaderboard" in text and "tied" in text


def test_classification_report_renders_in_chromium(browser, reports, tmp_path):
    got = _render(browser, reports["churn"], tmp_path / "churn.png")
    assert got["problems"] == [] and got["outside"] == []
    assert got["drawn"] == got["n_figures"] >= 7
    winner = next(t.split(": ", 1)[1] for t in got["titles"] if t.startswith("ROC curve: "))
    expected = [
        TITLES["folds"].format(metric="roc_auc"),
        TITLES["history"].format(family="logistic_regression"),
        TITLES["history"].format(family="random_forest"),
        TITLES["importance"].format(family="logistic_regression"),
        TITLES["roc"].format(family=winner),
        TITLES["pr"].format(family=winner),
        TITLES["confusion"].format(family=winner),
    ]
    for title in expected:
        assert title in got["titles"], (title, got["titles"])
    _not_blank(got["png"])


def test_regression_report_renders_in_chromium(browser, reports, tmp_path):
    got = _render(browser, reports["prices"], tmp_path / "prices.png")
    assert got["problems"] == [] and got["outside"] == []
    assert got["drawn"] == got["n_figures"]
    for title in (TITLES["folds"].format(metric="rmse"), TITLES["history"].format(family="lasso"),
                  TITLES["importance"].format(family="lasso"), TITLES["pred_actual"].format(family="lasso"),
                  TITLES["residuals"].format(family="lasso")):
        assert title in got["titles"], (title, got["titles"])
    assert "out-of-fold predictions" in reports["prices"].read_text(encoding="utf-8")
    _not_blank(got["png"])


def test_report_of_a_dataframe_run_needs_the_dataframe_for_the_winner(mixed_frame, storage_url, tmp_path):
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], trials=1, cv=3, storage=storage_url, run="r")
    text = (tmp_path / "a.html")
    api.report(str(text), run="r", storage=storage_url)
    html = text.read_text(encoding="utf-8")
    assert "need the run&#x27;s data" in html and "ROC curve" not in html
    api.report(str(text), run="r", storage=storage_url, data=mixed_frame)
    html = text.read_text(encoding="utf-8")
    assert TITLES["roc"].format(family="logistic_regression") in html
    assert TITLES["confusion"].format(family="logistic_regression") in html


def test_report_errors_are_one_line(storage_url, tmp_path):
    res = CliRunner().invoke(app, ["report", "--storage", storage_url, "--out", str(tmp_path / "x.html")])
    assert res.exit_code == 2 and "Traceback" not in res.output and "no storage" in res.output


def test_missing_plotly_is_one_line_naming_the_extra(monkeypatch, mixed_frame, storage_url, tmp_path):
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], trials=1, cv=3, storage=storage_url, run="r")
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    res = CliRunner().invoke(app, ["report", "--storage", storage_url, "--out", str(tmp_path / "x.html")])
    assert res.exit_code == 2 and "pip install 'tuner[report]'" in res.output
    assert not (tmp_path / "x.html").exists()
