"""Peer ``optuna_baseline``: one hand-written Optuna study over the same model families.

What a competent user would write without ``tuner``: a single TPE study whose first
parameter picks the model (a linear model, random forest, SVM or XGBoost), a standard
scikit-learn preprocessing pipeline (median imputation + scaling for numbers, most-frequent
imputation + one-hot encoding for the other columns), 5-fold (stratified) CV through
``cross_val_score``, ``study.optimize(timeout=0.8 × the time left)``, then the best
configuration is refit on all training rows. It deliberately imports nothing from ``tuner``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from benchmarks.peers import _common

SEARCH_SHARE = 0.8
SVC_MAX_ROWS = 10_000  # kernel SVMs beyond this are too slow for a tuning loop: use a linear one


def preprocessor(X: pd.DataFrame):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    other = [c for c in X.columns if c not in numeric]
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), other),
    ])


def make_model(trial, task: str, n_rows: int, seed: int):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.svm import SVC, SVR, LinearSVC, LinearSVR
    from xgboost import XGBClassifier, XGBRegressor

    clf = task != "regression"
    name = trial.suggest_categorical("model", ["linear", "random_forest", "svm", "xgboost"])
    if name == "linear":
        if clf:
            return LogisticRegression(C=trial.suggest_float("lr_C", 1e-3, 1e2, log=True), max_iter=2000)
        return Ridge(alpha=trial.suggest_float("ridge_alpha", 1e-3, 1e3, log=True))
    if name == "random_forest":
        params = dict(
            n_estimators=trial.suggest_int("rf_n_estimators", 50, 400, log=True),
            max_depth=trial.suggest_int("rf_max_depth", 2, 32, log=True),
            min_samples_leaf=trial.suggest_int("rf_min_samples_leaf", 1, 20, log=True),
            max_features=trial.suggest_float("rf_max_features", 0.1, 1.0),
            random_state=seed, n_jobs=1,
        )
        return RandomForestClassifier(**params) if clf else RandomForestRegressor(**params)
    if name == "svm":
        C = trial.suggest_float("svm_C", 1e-2, 1e2, log=True)
        if n_rows > SVC_MAX_ROWS:
            return LinearSVC(C=C, random_state=seed) if clf else LinearSVR(C=C, random_state=seed, max_iter=5000)
        gamma = trial.suggest_float("svm_gamma", 1e-4, 1.0, log=True)
        return SVC(C=C, gamma=gamma) if clf else SVR(C=C, gamma=gamma)
    params = dict(
        n_estimators=trial.suggest_int("xgb_n_estimators", 50, 500, log=True),
        learning_rate=trial.suggest_float("xgb_learning_rate", 0.01, 0.3, log=True),
        max_depth=trial.suggest_int("xgb_max_depth", 2, 10),
        subsample=trial.suggest_float("xgb_subsample", 0.5, 1.0),
        colsample_bytree=trial.suggest_float("xgb_colsample_bytree", 0.5, 1.0),
        min_child_weight=trial.suggest_float("xgb_min_child_weight", 1.0, 20.0, log=True),
        reg_lambda=trial.suggest_float("xgb_reg_lambda", 1e-3, 10.0, log=True),
        tree_method="hist", random_state=seed, n_jobs=1,
    )
    return XGBClassifier(**params) if clf else XGBRegressor(**params)


def run(args) -> None:
    import optuna
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import LabelEncoder

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")  # convergence chatter of the linear models
    X, y_raw, X_test = _common.load(args)
    clf = args.task != "regression"
    encoder = LabelEncoder().fit(y_raw) if clf else None  # XGBoost wants classes 0..K-1
    y = encoder.transform(y_raw) if clf else y_raw.to_numpy(dtype=float)
    folds = (StratifiedKFold if clf else KFold)(n_splits=5, shuffle=True, random_state=args.seed)
    scoring = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}[args.task]

    def build(trial):
        return make_pipeline(preprocessor(X), make_model(trial, args.task, len(X), args.seed))

    def objective(trial):
        scores = cross_val_score(build(trial), X, y, cv=folds, scoring=scoring, n_jobs=args.n_jobs)
        return float(np.mean(scores))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed))
    search_start_s = _common.elapsed(args)  # imports and data loading done
    timeout = max(1.0, SEARCH_SHARE * _common.remaining(args))
    started = time.monotonic()
    study.optimize(objective, timeout=timeout)
    tune_s = time.monotonic() - started

    started = time.monotonic()
    best = build(optuna.trial.FixedTrial(study.best_params))
    best.fit(X, y)
    info = {"search_start_s": search_start_s, "model": study.best_params["model"], "cv_score": study.best_value,
            "trials": len(study.trials), "tuning_timeout_s": round(timeout, 2), "tune_s": round(tune_s, 2),
            "refit_s": round(time.monotonic() - started, 2)}
    if not clf:
        _common.write_predictions(args, values=best.predict(X_test), info=info)
        return
    labels = encoder.inverse_transform(best.predict(X_test))
    if hasattr(best, "predict_proba"):
        _common.write_predictions(args, labels=labels, proba=best.predict_proba(X_test),
                                  proba_classes=encoder.classes_, info=info)
    else:  # SVC / LinearSVC: a decision score is all ROC-AUC needs
        decision = best.decision_function(X_test)
        if decision.ndim == 1:
            _common.write_predictions(args, labels=labels, decision=decision, proba_classes=encoder.classes_, info=info)
        else:
            _common.write_predictions(args, labels=labels, info=info)


if __name__ == "__main__":
    _common.main(run, __doc__)
