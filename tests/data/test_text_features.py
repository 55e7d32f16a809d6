"""Free-text columns (names, titles): the decision rule, the in-fold word features, and a
run → export → predict round trip with a name column (tuner.data.text)."""

from __future__ import annotations

import uuid
import warnings

import numpy as np
import pandas as pd
import pytest

from tuner.data.dataset import prepare
from tuner.data.schema import Schema
from tuner.data.text import MAX_TOKENS, TextTokens, free_text

TITLES = ["Mr", "Mrs", "Miss", "Master", "Dr"]
FIRST = ["John", "William", "Mary", "Anna", "James", "Elizabeth", "George", "Margaret", "Thomas", "Helen",
         "Charles", "Alice", "Henry", "Ellen", "Joseph", "Sarah"]
LAST = ["Smith", "Brown", "Andersson", "Johnson", "Williams", "Kelly", "Sage", "Goodwin", "Carter", "Fortune",
        "Panula", "Rice", "Skoog", "Asplund", "Baclini", "Ford", "Harper", "West", "Allison", "Becker"]


def _letters(rng, k: int) -> str:
    return "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=k))


def names(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Passenger-like names "Last, Title. First Middle", unique per row; and the title of each."""
    rng = np.random.default_rng(seed)
    titles = rng.choice(TITLES, size=n, p=[0.5, 0.2, 0.2, 0.05, 0.05])
    out = [f"{rng.choice(LAST)}, {t}. {rng.choice(FIRST)} {_letters(rng, 5).title()}{i}" for i, t in enumerate(titles)]
    return out, titles


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    name, titles = names(n, seed)
    x = rng.normal(size=n)
    female = np.isin(titles, ["Mrs", "Miss"])
    survived = np.where(female * 2.0 + 0.3 * x + rng.normal(scale=0.5, size=n) > 1.0, "yes", "no")
    return pd.DataFrame({
        "name": name,
        "ticket_code": [f"A-{i:05d}" for i in rng.permutation(n)],
        "x": x,
        "port": rng.choice(["S", "C", "Q"], size=n),
        "survived": survived,
    })


# --- the decision rule --------------------------------------------------------------------------

def test_names_with_repeating_titles_are_free_text():
    is_text, why = free_text(pd.Series(names(300)[0]))
    assert is_text and "mr" in why


def test_short_descriptions_are_free_text():
    rng = np.random.default_rng(1)
    adjectives, things = ["red", "blue", "large", "small", "used", "new"], ["shirt", "chair", "lamp", "table", "bike"]
    values = [f"{rng.choice(adjectives)} {rng.choice(things)} {_letters(rng, 6)}" for _ in range(200)]
    assert free_text(pd.Series(values))[0]


@pytest.mark.parametrize("kind", ["codes", "uuids", "emails", "prefix_and_number", "random_words", "one_word"])
def test_identifiers_are_not_free_text(kind):
    rng = np.random.default_rng(2)
    n = 300
    values = {
        "codes": [f"A-{i:05d}" for i in range(n)],
        "uuids": [str(uuid.UUID(int=int(rng.integers(0, 2 ** 62)) * 7 + i)) for i in range(n)],
        "emails": [f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}{i}@example.com" for i in range(n)],
        "prefix_and_number": [f"user {i}" for i in range(n)],  # a word in every row tells no row apart
        "random_words": [f"{_letters(rng, 7)} {_letters(rng, 7)}" for _ in range(n)],  # words never repeat
        "one_word": [f"{rng.choice(LAST)}{i}" for i in range(n)],
    }[kind]
    is_text, why = free_text(pd.Series(values))
    assert not is_text, why


def test_prepare_makes_names_text_and_keeps_identifiers_dropped():
    ds = prepare(frame(), "survived")
    assert ds.schema.text == ["name"]
    assert "name" in ds.schema.categorical and "name" not in ds.schema.encoded
    assert ds.schema.encoded == ["port"]  # a low-cardinality category is unchanged
    assert "ticket_code" not in ds.schema.columns
    notes = "\n".join(ds.notes)
    assert "free-text columns" in notes and "name (" in notes
    assert "dropped column 'ticket_code': identifier-like" in notes and "not free text" in notes


def test_high_cardinality_single_word_categories_stay_categorical():
    rng = np.random.default_rng(3)
    n = 300
    df = pd.DataFrame({"shop": rng.choice([f"shop{i}" for i in range(45)], size=n),
                       "label": rng.choice(["a", "b"], size=n), "x": rng.normal(size=n)})
    ds = prepare(df, "label")
    assert ds.schema.text == [] and "shop" in ds.schema.encoded


def test_few_multiword_values_stay_categorical():
    """Multi-word values the one-hot encoder keeps whole (≤ 30 distinct) are categories, not text."""
    rng = np.random.default_rng(4)
    n = 300
    df = pd.DataFrame({"country": rng.choice(["United States", "United Kingdom", "New Zealand", "South Africa"], size=n),
                       "label": rng.choice(["a", "b"], size=n), "x": rng.normal(size=n)})
    ds = prepare(df, "label")
    assert ds.schema.text == [] and ds.schema.encoded == ["country"]


def test_schema_round_trip_and_old_schema_without_text():
    s = Schema(numeric=["x"], categorical=["name", "port"], text=["name"])
    assert Schema.from_dict(s.to_dict()).text == ["name"]
    old = {"numeric": ["x"], "categorical": ["port"], "categories": {"port": ["C", "Q", "S"]}}
    assert Schema.from_dict(old).text == [] and Schema.from_dict(old).encoded == ["port"]


# --- the transformer ----------------------------------------------------------------------------

def test_tokens_are_learnt_from_the_fitting_rows_only():
    train = pd.DataFrame({"name": ["Smith, Mr. John", "Brown, Mrs. Anna", "Kelly, Mr. Tom", "Ford, Mrs. Ann"]})
    valid = pd.DataFrame({"name": ["Zorro, Sir. Diego", "Zorro, Sir. Bernardo"]})
    t = TextTokens().fit(train)
    vocab = set(t.vectorizers_[0].get_feature_names_out())
    assert {"mr", "mrs"} <= vocab and "sir" not in vocab and "zorro" not in vocab
    out = t.transform(valid)
    assert out.shape == (2, len(vocab) + 1)
    assert np.all(out[:, :-1] == 0) and np.all(out[:, -1] > 0)  # unseen words: no token, only the word count


def test_missing_and_unseen_text():
    train = pd.DataFrame({"name": names(60)[0], "title": [None] * 60})
    t = TextTokens().fit(train)  # an all-missing column keeps only its word count
    rows = pd.DataFrame({"name": [np.nan, None, "", "Quux, Mx. Zed"], "title": ["a b", None, np.nan, "x"]})
    out = t.transform(rows)
    n_tokens = len(t.vectorizers_[0].get_feature_names_out())
    assert out.shape == (4, n_tokens + 1 + 1) and np.isfinite(out).all()
    assert t.vectorizers_[1] is None
    assert np.all(out[:3, : n_tokens + 1] == 0)
    assert len(t.get_feature_names_out()) == out.shape[1]


def test_vocabulary_is_capped_and_needs_repeats():
    rng = np.random.default_rng(5)
    many = pd.DataFrame({"t": [" ".join(_letters(rng, 3) for _ in range(6)) for _ in range(3000)]})
    t = TextTokens().fit(many)
    assert len(t.vectorizers_[0].get_feature_names_out()) == MAX_TOKENS
    once = pd.DataFrame({"t": ["alpha beta", "gamma delta", "Mr Smith", "Mr Brown"]})
    assert list(TextTokens().fit(once).vectorizers_[0].get_feature_names_out()) == ["mr"]
    nothing = pd.DataFrame({"t": ["alpha beta", "gamma delta"]})  # no repeating word: every word is kept
    assert len(TextTokens().fit(nothing).vectorizers_[0].get_feature_names_out()) == 4


# --- run → export → predict / serve -------------------------------------------------------------

@pytest.fixture(scope="module")
def name_run(tmp_path_factory):
    from typer.testing import CliRunner

    from tuner.cli import app

    folder = tmp_path_factory.mktemp("text_run")
    csv = folder / "passengers.csv"
    frame(200).to_csv(csv, index=False)
    storage = f"sqlite:///{folder / 'tuner.db'}"
    result = CliRunner().invoke(app, ["run", str(csv), "--target", "survived", "--models", "logistic_regression,xgboost",
                                      "--trials", "1", "--cv", "2", "--n-jobs", "1", "--storage", storage, "--run", "t"])
    assert result.exit_code == 0, result.output
    return folder, storage, csv, result.output


def test_run_states_the_decision_and_learns_from_the_words(name_run):
    import tuner

    folder, storage, _, output = name_run
    flat = " ".join(output.split())
    assert "free-text columns" in flat and "name (" in flat
    assert "1 free-text" in flat  # the Data line counts it
    assert "'ticket_code'" in flat and "not free text" in flat
    board = tuner.leaderboard(run="t", storage=storage)
    # the target follows the title (Mrs / Miss): without the name's words the best AUC is near 0.6
    assert board["roc_auc_mean"].max() > 0.85


@pytest.mark.parametrize("family", ["logistic_regression", "xgboost"])
def test_export_predict_round_trip_with_unseen_words(name_run, family):
    import tuner
    from tuner.deploy.export import export_model
    from tuner.evaluation.cross_validation import predict_outputs

    folder, storage, csv, _ = name_run
    onnx = importlib_util_find("onnxruntime") and importlib_util_find("skl2onnx")
    result = export_model(folder / family, run="t", storage=storage, family=family, onnx=bool(onnx))
    card = result.card
    assert card["schema"]["text"] == ["name"]
    assert {"name": "name", "type": "text"}.items() <= card["schema"]["columns"][1].items()
    if onnx:  # no ONNX form yet: the native artifact is written and the card says why
        assert card["onnx"]["status"] == "not converted" and "free-text column(s) name" in card["onnx"]["reason"]
        assert not (folder / family / "model.onnx").exists()
    model = tuner.load(result.out)
    assert model.schema.text == ["name"]
    new = pd.DataFrame({"name": ["Zorro, Mrs. Diega", None, "", "Qwerty, Mr. Asdf", "Nobody Knows"],
                        "x": [0.0] * 5, "port": ["S", "C", None, "Q", "S"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = model.predict(new)
        proba = model.predict_proba(new)
        X, _ = model.prepare(new)
    codes, native = predict_outputs(result.fitted, X, model.task, len(model.classes))
    np.testing.assert_array_equal(proba.to_numpy(), native)
    assert list(got[[0, 3]]) == ["yes", "no"]  # the title decides, though every other word is new
    assert np.isfinite(proba.to_numpy()).all()


def test_cli_predict_and_serve_take_free_text(name_run, tmp_path):
    import json
    import urllib.request

    from typer.testing import CliRunner

    import tuner
    from export_helpers import serving
    from tuner.cli import app
    from tuner.deploy.export import export_model

    folder, storage, csv, _ = name_run
    out = tmp_path / "model"
    export_model(out, run="t", storage=storage, family="logistic_regression")
    rows = pd.DataFrame({"name": ["Zorro, Mrs. Diega", "NA", "Qwerty, Mr. Asdf"], "x": [0.1, 0.2, 0.3],
                         "port": ["S", "C", "Q"]})
    rows.to_csv(tmp_path / "new.csv", index=False)
    result = CliRunner().invoke(app, ["predict", str(out), str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    predicted = pd.read_csv(tmp_path / "p.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = tuner.load(out).predict(rows)
    assert len(predicted) == 3 and list(predicted.iloc[:, -1] if "prediction" not in predicted else
                                         predicted["prediction"]) == list(expected)
    records = [{"name": "Zorro, Mrs. Diega", "x": 0.1, "port": "S"}, {"name": None, "x": 0.2, "port": "C"}]
    with serving(out, tmp_path / "serve.log") as (base, _):
        req = urllib.request.Request(base + "/predict", data=json.dumps({"records": records}).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = json.loads(resp.read())
        with urllib.request.urlopen(base + "/openapi.json", timeout=30) as resp:
            described = json.dumps(json.loads(resp.read()))
    assert body["predictions"][0] == "yes" and len(body["predictions"]) == 2
    assert "free text (null, blank or NA when missing)" in described  # not "category ... seen in training:"


def importlib_util_find(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_polynomial_features_are_not_searched_over_word_features():
    """A free-text column brings up to ~100 word columns: degree-2 features of those would be
    thousands, so prep_poly is not offered (it is for a table of a few numeric columns)."""
    from search_spaces import SpaceContext, get_space
    from tuner.data import preprocessing
    from tuner.data.schema import Schema

    ctx = SpaceContext(task="binary", n_rows=200, n_features=3, n_classes=2)
    spec = get_space("logistic_regression").preprocessing
    plain = Schema(numeric=["x"], categorical=["port"])
    worded = Schema(numeric=["x"], categorical=["port", "name"], text=["name"])
    assert "prep_poly" in preprocessing.defaults(ctx, spec, plain)
    assert "prep_poly" not in preprocessing.defaults(ctx, spec, worded)
