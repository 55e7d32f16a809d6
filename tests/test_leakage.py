"""No leakage: on pure-noise features with random labels every family's cross-validated
ROC-AUC stays near 0.5, while a deliberately leaky protocol on the same data does not.

Chance-level CV ROC-AUC on 400 rows has a spread of about ±0.04, so the check uses the
mean over a family's trials (not the best one, which is selection-biased upwards).
"""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

import search_spaces
import tuner

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

N_ROWS, N_FEATURES, TOLERANCE = 400, 50, 0.07


@pytest.fixture(scope="module")
def noise() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(N_ROWS, N_FEATURES)), columns=[f"f{i}" for i in range(N_FEATURES)])
    df["label"] = rng.choice(["a", "b"], size=N_ROWS)
    return df


def test_the_check_catches_a_leaky_protocol(noise):
    X, y = noise.drop(columns="label").to_numpy(), (noise["label"] == "b").to_numpy()
    X_leaky = SelectKBest(f_classif, k=5).fit_transform(X, y)  # selection saw every row: leakage
    auc = cross_val_score(LogisticRegression(), X_leaky, y, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                          scoring="roc_auc").mean()
    assert auc > 0.5 + TOLERANCE


def test_every_family_scores_chance_on_noise(noise, storage_url):
    families = search_spaces.default_family_names("binary")
    board = tuner.tune(noise, target="label", trials=4, cv=5, storage=storage_url, run="noise")
    assert set(board["model"]) - {"ensemble"} == set(families)
    blended = board[board["model"] == "ensemble"]  # nested selection: no lift from fitting the noise either
    assert blended.empty or abs(blended["roc_auc_mean"].item() - 0.5) < TOLERANCE
    for family in families:
        study = optuna.load_study(study_name=f"noise::{family}", storage=storage_url)
        aucs = [t.user_attrs["metrics"]["roc_auc"]["mean"] for t in study.trials if "metrics" in t.user_attrs]
        assert aucs, family
        assert abs(np.mean(aucs) - 0.5) < TOLERANCE, (family, aucs)
