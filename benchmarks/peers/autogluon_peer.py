"""Peer ``autogluon``: AutoGluon's ``TabularPredictor`` with the ``medium_quality`` presets.

    TabularPredictor(label="target", problem_type=<task>, eval_metric=<roc_auc|accuracy|r2>)
        .fit(train, time_limit=<time left − margin>, presets="medium_quality", num_cpus=<n_jobs>)

then ``predict`` / ``predict_proba`` on the holdout features; CPU only (``num_gpus=0``),
like every peer. ``time_limit`` is the time left after start-up and loading, less
``PREDICT_MARGIN`` of it (at least ``MIN_MARGIN_S`` s) for prediction, writing and exit;
``medium_quality`` neither bags nor refits, so no refit time is needed. Without torch (the
default install below: PyPI's torch wheel brings gigabytes of CUDA libraries) the presets'
neural networks are excluded up front instead of failing one by one. Everything else is
AutoGluon's default (its models' random seed is AutoGluon's fixed 0; the holdout seed
changes the split it is given).

AutoGluon pins its own scikit-learn, numpy, ... so it lives in a virtual environment of
its own, not tuner's: this module imports only ``_common`` (numpy, pandas, pyarrow) and
AutoGluon. Run it with that interpreter::

    python3 -m venv /work/ag-venv
    /work/ag-venv/bin/pip install "autogluon.tabular[lightgbm,catboost,xgboost]" pyarrow
    python -m benchmarks.compare --peers tuner,autogluon --python autogluon=/work/ag-venv/bin/python ...
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.peers import _common

PREDICT_MARGIN = 0.10  # of the time left when fitting starts
MIN_MARGIN_S = 4.0  # measured: fit overruns time_limit by up to ~2 s, the interpreter's exit takes ~1.3 s
TORCH_MODELS = ["NN_TORCH", "FASTAI"]  # skipped up front when torch is not installed (it is not by default)
PRESETS = "medium_quality"


def fit_time_limit(left_s: float) -> float:
    """Seconds given to ``fit``: the time left less the margin for prediction (at least 1 s)."""
    return max(1.0, left_s - max(MIN_MARGIN_S, PREDICT_MARGIN * left_s))


def run(args) -> None:
    try:
        import autogluon.tabular
        from autogluon.tabular import TabularPredictor
    except ImportError as exc:
        raise SystemExit(f"autogluon is not installed for this interpreter ({exc}); install it in a venv of its "
                         "own and pass --python autogluon=/path/to/venv/bin/python (see benchmarks/README.md)") from None

    X, y, X_test = _common.load(args)
    train = X.assign(**{_common.TARGET: y.to_numpy()})
    predictor = TabularPredictor(label=_common.TARGET, problem_type=args.task, eval_metric=args.metric,
                                 path=str(args.workdir / "autogluon_models"), verbosity=1)
    search_start_s = _common.elapsed(args)  # imports and data loading done
    limit = fit_time_limit(_common.remaining(args))
    started = time.monotonic()
    excluded = [] if _has_torch() else TORCH_MODELS
    predictor.fit(train, time_limit=limit, presets=PRESETS, num_cpus=args.n_jobs, num_gpus=0,
                  excluded_model_types=excluded or None)
    fit_s = round(time.monotonic() - started, 2)
    board = predictor.leaderboard(silent=True)
    info = {"search_start_s": search_start_s, "model": str(predictor.model_best), "time_limit_s": round(limit, 2),
            "fit_s": fit_s, "models_fit": int(len(board)), "presets": PRESETS, "excluded": excluded,
            "val_score": _float(board.loc[board["model"] == predictor.model_best, "score_val"]),
            "version": f"autogluon.tabular {autogluon.tabular.__version__}"}
    if args.task == "regression":
        _common.write_predictions(args, values=predictor.predict(X_test).to_numpy(dtype=float), info=info)
        return
    proba = predictor.predict_proba(X_test, as_multiclass=True)
    _common.write_predictions(args, labels=predictor.predict(X_test).to_numpy(), proba=proba.to_numpy(dtype=float),
                              proba_classes=np.asarray(list(proba.columns), dtype=object), info=info)


def _has_torch() -> bool:
    from importlib.util import find_spec

    return find_spec("torch") is not None


def _float(values):
    try:
        v = float(values.iloc[0])
    except (IndexError, TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


if __name__ == "__main__":
    _common.main(run, __doc__)
